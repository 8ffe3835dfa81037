//go:build !amd64 || race

package flowtable

import "sync/atomic"

// storeRel32 and storeRel64: see store_amd64.go. Elsewhere (and in race
// builds) they are sync/atomic's sequentially consistent stores.
func storeRel32(p *uint32, v uint32) { atomic.StoreUint32(p, v) }

func storeRel64(p *uint64, v uint64) { atomic.StoreUint64(p, v) }
