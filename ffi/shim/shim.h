/*
 * rvs C shim: exported wrappers for DPDK's static-inline functions, which bindgen cannot link to.
 * Only the calls Rust makes per burst (not per packet) or on slow paths belong here; per-packet
 * mbuf field access is done in Rust directly on struct rte_mbuf.
 */
#ifndef RVS_SHIM_H
#define RVS_SHIM_H
#include <stdint.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

uint16_t rvs_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t rvs_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
struct rte_mbuf *rvs_pktmbuf_alloc(struct rte_mempool *mp);
int rvs_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned count);
void rvs_pktmbuf_free(struct rte_mbuf *m);
char *rvs_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *rvs_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *rvs_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int rvs_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
int rvs_pktmbuf_linearize(struct rte_mbuf *m);
unsigned rvs_lcore_id(void);
unsigned rvs_socket_id(void);
int rvs_errno(void);
uint64_t rvs_rdtsc(void);
void rvs_pause(void);
unsigned rvs_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned n, unsigned *free_space);
unsigned rvs_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned n, unsigned *available);
unsigned rvs_ring_count(const struct rte_ring *r);
#endif
