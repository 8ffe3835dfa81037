package bgp

// Operational notes, measured by TestSpeakerTakesAFullInternetTableFromBird
// and TestStoreHoldsAFullTableInUnder200BytesPerRoute on the project's
// 2-core machine (shared, load average 5-9 during the runs):
//
//   - Memory: the speaker's own store costs ~32 bytes per route (a full
//     table of 1.06 M routes: 34 MB). gobgp's adj-rib-in adds ~410 bytes
//     per route; learned paths are kept out of gobgp's global RIB (import
//     policy rejects them) because gobgp never forwards them anyway.
//   - Full table (BIRD, 1.06 M prefixes): 28-45 s from session up to the
//     last route at a subscriber on the loaded machine, for ~19 s of CPU
//     (~18 µs per route, mostly gobgp: decoding, adj-rib-in, its API
//     conversion, and garbage collection over its RIB). The controlplane
//     binary should run with a higher GOGC (400 cut the wall time ~20%).
//   - One update with a full table held: p50 ~80 µs, p99 ~250 µs from the
//     peer's gobgp API call to the subscriber.
//   - A session that drops with a full table: gobgp drops its adj-rib-in
//     (~12 µs of CPU per path) before it reports the state change, so
//     SessionDown and the withdrawals arrive ~14 s after the peer went away
//     (12 s of CPU). Small tables are immediate. gobgp warns once per such
//     withdrawal (its global RIB never held the path); the log adapter
//     demotes that warning, which otherwise tripled the time.
//   - SetAdvertised installs paths one AddPath call at a time (~100 µs
//     each): fine for NAT pools and peering prefixes, slow (minutes) for
//     re-advertising a full learned table to another external (transit).
