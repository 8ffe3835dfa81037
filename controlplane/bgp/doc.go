package bgp

// Operational notes, measured by TestSpeakerTakesAFullInternetTableFromBird
// and TestStoreHoldsAFullTableInUnder200BytesPerRoute on the project's
// 2-core machine (shared, load average 5-9 during the runs):
//
//   - Memory: the speaker's own store costs ~32 bytes per route (a full
//     table of 1.06 M routes: 34 MB). gobgp's adj-rib-in adds ~410 bytes
//     per route; learned paths are kept out of gobgp's global RIB (import
//     policy rejects them) because gobgp never forwards them anyway.
//   - Full table (BIRD, 1.06 M prefixes): ~28-35 s from session up to the
//     last route at a subscriber, for ~18 s of CPU; a third of it is garbage
//     collection over gobgp's RIB, so the controlplane binary should run
//     with a higher GOGC (400 cut the wall time by ~20%).
//   - One update with a full table held: p50 ~80 µs, p99 ~250 µs from the
//     peer's gobgp API call to the subscriber.
//   - A session that drops with a full table: gobgp drops its adj-rib-in
//     before it reports the state change, so SessionDown and the withdrawals
//     arrive 7-18 s after the peer went away. Small tables are immediate.
//   - SetAdvertised installs paths one AddPath call at a time (~100 µs
//     each): fine for NAT pools and peering prefixes, slow (minutes) for
//     re-advertising a full learned table to another external (transit).
