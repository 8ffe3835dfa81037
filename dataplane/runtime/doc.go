// Package runtime runs the dataplane on DPDK: it attaches the ports named by
// device strings, creates the mbuf pool, sets up RX/TX queues (RSS where the
// driver has it), and runs one pinned, DPDK-registered goroutine per worker
// core whose loop is rx burst → Processor.ProcessBurst → tx burst, with the
// packets for each output port batched per port. Each port can have a
// kernel punt interface (net_tap) carrying the port's own addresses: packets
// the processor punts go to it, and what the kernel sends on it goes out the
// port, so BGP and other host services run across the data ports.
//
// It owns mbufs and queues, not packet logic: the Processor (the pipeline's
// Worker, or the trivial processors of simple.go) decides every packet's
// verdict on driver-neutral pipeline.Bufs that point into the mbufs in place.
// Every mbuf is sent or freed on every path; Runtime.MbufsInUse lets tests
// check that.
package runtime
