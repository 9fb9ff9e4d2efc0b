// Package crdt holds the conflict-free replicated data types edgestock keeps
// stock in. It is pure: no I/O, no clock, no goroutines, no locks. Replica IDs
// and operations are inputs; merged states are returned values.
//
// A PNCounter is a map from replica ID to a pair (P, N) of monotonically
// growing totals. Each replica only ever grows its own pair; merging takes the
// per-replica maximum of each component, so merge is commutative, associative
// and idempotent, and the value Σp − Σn converges whatever the delivery order.
package crdt
