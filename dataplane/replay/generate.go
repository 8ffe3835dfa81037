package replay

//go:generate go run ./gen -out ../../testdata/pcap
