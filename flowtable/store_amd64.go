//go:build !race

package flowtable

// storeRel32 and storeRel64 are release stores: a plain MOV, which x86's
// total store order already keeps after every earlier store and load.
// sync/atomic's stores are XCHG (sequentially consistent, a locked
// instruction of 13-20 ns on the project VM); every store the table makes
// under a stripe lock only needs release order, because lock-free readers
// validate what they read against the stripe's sequence count (seqlock) and
// read with atomic loads. Being assembly, the call is also a compiler
// barrier. The race build uses sync/atomic instead so that the detector sees
// the protocol.
//
//go:noescape
func storeRel32(p *uint32, v uint32)

//go:noescape
func storeRel64(p *uint64, v uint64)

// publish and unpublish are a whole bucket-slot change inside the stripe's
// sequence count (bump, stores, bump) in one call: a Go call to assembly
// costs more than the stores it makes. publish stores idx, then tag;
// unpublish clears tag. The caller holds the stripe lock.
//
//go:noescape
func publish(seq *uint32, idx *uint32, tag *uint32, i uint32, tg uint32)

//go:noescape
func unpublish(seq *uint32, tag *uint32)

// store4 is four storeRel64 in order (w[0] first), in one call.
//
//go:noescape
func store4(w *[4]uint64, w0, w1, w2, w3 uint64)
