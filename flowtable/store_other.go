//go:build !amd64 || race

package flowtable

import "sync/atomic"

// storeRel32 and storeRel64: see store_amd64.go. Elsewhere (and in race
// builds) they are sync/atomic's sequentially consistent stores.
func storeRel32(p *uint32, v uint32) { atomic.StoreUint32(p, v) }

func storeRel64(p *uint64, v uint64) { atomic.StoreUint64(p, v) }

// publish, unpublish and store4: see store_amd64.go.
func publish(seq *uint32, idx *uint32, tag *uint32, i uint32, tg uint32) {
	atomic.StoreUint32(seq, *seq+1)
	atomic.StoreUint32(idx, i)
	atomic.StoreUint32(tag, tg)
	atomic.StoreUint32(seq, *seq+1)
}

func unpublish(seq *uint32, tag *uint32) {
	atomic.StoreUint32(seq, *seq+1)
	atomic.StoreUint32(tag, 0)
	atomic.StoreUint32(seq, *seq+1)
}

func store4(w *[4]uint64, w0, w1, w2, w3 uint64) {
	atomic.StoreUint64(&w[0], w0)
	atomic.StoreUint64(&w[1], w1)
	atomic.StoreUint64(&w[2], w2)
	atomic.StoreUint64(&w[3], w3)
}
