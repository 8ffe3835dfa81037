package flowtable

import (
	"runtime"
	"sync/atomic"
)

// spinLock is a stripe's lock. Its holders never block (no allocation, no
// system call; Walk's callback excepted, which is for listings), and on the
// packet path they hold it for well under a microsecond, so a waiter spins,
// yielding to the scheduler after a few tries (the holder may have been
// preempted), instead of parking. Unlock is a release store (see
// storeRel32), not the locked add of sync.Mutex.Unlock: that one is a full
// barrier, which waits until every store made under the lock has reached
// the cache, i.e. until the bucket and session lines a new session writes
// have arrived; a new session releases three stripe locks.
type spinLock struct{ v uint32 }

// Lock takes the lock.
func (l *spinLock) Lock() {
	if !atomic.CompareAndSwapUint32(&l.v, 0, 1) {
		l.lockSlow()
	}
}

func (l *spinLock) lockSlow() {
	for n := 0; ; n++ {
		if atomic.LoadUint32(&l.v) == 0 && atomic.CompareAndSwapUint32(&l.v, 0, 1) {
			return
		}
		if n >= 16 {
			runtime.Gosched()
		}
	}
}

// TryLock takes the lock if it is free and reports whether it did.
func (l *spinLock) TryLock() bool {
	return atomic.LoadUint32(&l.v) == 0 && atomic.CompareAndSwapUint32(&l.v, 0, 1)
}

// Unlock releases the lock. Every store made under it is visible before the
// lock reads free: x86 keeps stores in order (other builds, and race builds,
// use sync/atomic's store).
func (l *spinLock) Unlock() { storeRel32(&l.v, 0) }
