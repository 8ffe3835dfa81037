// C helpers for the peergate DPDK binding. DPDK's burst and mbuf helpers are
// static inline, so cgo cannot call them directly: these wrappers make each
// burst exactly one cgo call, and expose what cgo cannot read (bitfields,
// struct offsets). Everything here is static so that every cgo file of the
// package can include it.
#ifndef PG_DPDK_H
#define PG_DPDK_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_dev.h>
#include <rte_ethdev.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>

// Offsets of the rte_mbuf fields the Go side reads and writes in place.
// cgo turns these enum values into Go constants, so the Go accessors are
// compiled against the layout of the installed headers.
enum {
	PG_MBUF_BUF_ADDR = offsetof(struct rte_mbuf, buf_addr),
	PG_MBUF_DATA_OFF = offsetof(struct rte_mbuf, data_off),
	PG_MBUF_REFCNT = offsetof(struct rte_mbuf, refcnt),
	PG_MBUF_NB_SEGS = offsetof(struct rte_mbuf, nb_segs),
	PG_MBUF_PORT = offsetof(struct rte_mbuf, port),
	PG_MBUF_OL_FLAGS = offsetof(struct rte_mbuf, ol_flags),
	PG_MBUF_PKT_LEN = offsetof(struct rte_mbuf, pkt_len),
	PG_MBUF_DATA_LEN = offsetof(struct rte_mbuf, data_len),
	PG_MBUF_HASH = offsetof(struct rte_mbuf, hash),
	PG_MBUF_BUF_LEN = offsetof(struct rte_mbuf, buf_len),
	PG_MBUF_SIZE = sizeof(struct rte_mbuf),
	PG_PKTMBUF_HEADROOM = RTE_PKTMBUF_HEADROOM,
	PG_MBUF_DEFAULT_DATAROOM = RTE_MBUF_DEFAULT_DATAROOM,
	PG_MAX_QUEUE_STATS = RTE_ETHDEV_QUEUE_STAT_CNTRS,
};

static inline int pg_errno(void) { return rte_errno; }

// The burst arrays are C memory passed as integers: cgo then skips its
// per-call check that no Go pointer hides behind a pointer argument.
static inline uint16_t pg_rx_burst(uint16_t port, uint16_t q, uintptr_t pkts, uint16_t n) {
	return rte_eth_rx_burst(port, q, (struct rte_mbuf **)pkts, n);
}

static inline uint16_t pg_tx_burst(uint16_t port, uint16_t q, uintptr_t pkts, uint16_t n) {
	return rte_eth_tx_burst(port, q, (struct rte_mbuf **)pkts, n);
}

// pg_tx_burst_free sends pkts and frees what the queue did not take, so a
// full TX ring drops (and the caller counts) instead of leaking or blocking.
static inline uint16_t pg_tx_burst_free(uint16_t port, uint16_t q, uintptr_t arr, uint16_t n) {
	struct rte_mbuf **pkts = (struct rte_mbuf **)arr;
	uint16_t sent = rte_eth_tx_burst(port, q, pkts, n);
	if (sent < n)
		rte_pktmbuf_free_bulk(pkts + sent, n - sent);
	return sent;
}

static inline struct rte_mbuf *pg_pktmbuf_alloc(struct rte_mempool *mp) {
	return rte_pktmbuf_alloc(mp);
}

static inline int pg_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **pkts, unsigned n) {
	return rte_pktmbuf_alloc_bulk(mp, pkts, n);
}

static inline void pg_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }

static inline void pg_pktmbuf_free_bulk(uintptr_t pkts, unsigned n) {
	rte_pktmbuf_free_bulk((struct rte_mbuf **)pkts, n);
}

static inline struct rte_mempool *pg_pool_create(const char *name, unsigned n, unsigned cache,
						 uint16_t data_room, int socket) {
	return rte_pktmbuf_pool_create(name, n, cache, 0, data_room, socket);
}

static inline int pg_port_configure(uint16_t port, uint16_t nrxq, uint16_t ntxq, uint64_t rss_hf,
				    uint64_t tx_offloads) {
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	if (rss_hf != 0 && nrxq > 1) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
	}
	conf.txmode.offloads = tx_offloads;
	return rte_eth_dev_configure(port, nrxq, ntxq, &conf);
}

struct pg_port_info {
	char name[RTE_ETH_NAME_MAX_LEN];
	char driver[64];
	uint16_t max_rx_queues;
	uint16_t max_tx_queues;
	uint64_t rss_offloads;
	uint64_t tx_offload_capa;
	uint16_t rx_desc_max, rx_desc_min, tx_desc_max, tx_desc_min;
	uint32_t max_rx_pktlen;
	uint16_t min_mtu, max_mtu;
	int socket;
};

static inline int pg_port_info(uint16_t port, struct pg_port_info *pi) {
	struct rte_eth_dev_info info;
	int rc = rte_eth_dev_info_get(port, &info);
	if (rc != 0)
		return rc;
	memset(pi, 0, sizeof(*pi));
	rc = rte_eth_dev_get_name_by_port(port, pi->name);
	if (rc != 0)
		return rc;
	if (info.driver_name != NULL)
		strncpy(pi->driver, info.driver_name, sizeof(pi->driver) - 1);
	pi->max_rx_queues = info.max_rx_queues;
	pi->max_tx_queues = info.max_tx_queues;
	pi->rss_offloads = info.flow_type_rss_offloads;
	pi->tx_offload_capa = info.tx_offload_capa;
	pi->rx_desc_max = info.rx_desc_lim.nb_max;
	pi->rx_desc_min = info.rx_desc_lim.nb_min;
	pi->tx_desc_max = info.tx_desc_lim.nb_max;
	pi->tx_desc_min = info.tx_desc_lim.nb_min;
	pi->max_rx_pktlen = info.max_rx_pktlen;
	pi->min_mtu = info.min_mtu;
	pi->max_mtu = info.max_mtu;
	pi->socket = rte_eth_dev_socket_id(port);
	return 0;
}

// pg_port_remove closes the port and detaches its device (hot-unplug), so a
// later probe of the same device string works in the same process.
static inline int pg_port_remove(uint16_t port) {
	struct rte_eth_dev_info info;
	int rc = rte_eth_dev_info_get(port, &info);
	if (rc != 0)
		return rc;
	struct rte_device *dev = info.device;
	rc = rte_eth_dev_close(port);
	if (rc != 0)
		return rc;
	if (dev == NULL)
		return 0;
	return rte_dev_remove(dev);
}

static inline int pg_link(uint16_t port, uint32_t *speed, int *up, int *full) {
	struct rte_eth_link l;
	memset(&l, 0, sizeof(l));
	int rc = rte_eth_link_get_nowait(port, &l);
	if (rc != 0)
		return rc;
	*speed = l.link_speed;
	*up = l.link_status;
	*full = l.link_duplex;
	return 0;
}

static inline int pg_mac_get(uint16_t port, uint8_t *out) {
	struct rte_ether_addr a;
	int rc = rte_eth_macaddr_get(port, &a);
	if (rc != 0)
		return rc;
	memcpy(out, a.addr_bytes, 6);
	return 0;
}

static inline int pg_mac_set(uint16_t port, const uint8_t *in) {
	struct rte_ether_addr a;
	memcpy(a.addr_bytes, in, 6);
	return rte_eth_dev_default_mac_addr_set(port, &a);
}

#endif
