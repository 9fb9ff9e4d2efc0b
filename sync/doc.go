// Package sync is the agent↔hub protocol (SPEC §4–§5): the wire types of
// GET /v1/sync/deltas, POST /v1/sync/merge and GET /v1/sync/state, and the
// cursor format. What travels is PN-counter state, never operations, so a
// batch replayed, duplicated or reordered changes nothing. The hub, the
// central side of the protocol, is sync/hub.
package sync
