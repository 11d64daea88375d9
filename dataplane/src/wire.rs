//! Packet views (filled in below).
