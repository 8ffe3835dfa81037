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
