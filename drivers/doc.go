// Package drivers turns device payloads into validated stock events.
//
// Each driver lives in its own package and registers itself in init():
//
//	func init() { drivers.Register(drivers.Registration{Name: "events", Topic: "events", New: New}) }
//
// drivers/all blank-imports every driver. A driver decodes a Message into
// Items: each Item is either a valid Event or a Rejection with a reason code,
// together with the raw bytes it came from so a rejection can be quarantined
// as received. Drivers never touch SQLite, HTTP or the hub; deduplication and
// durability are the agent's job.
package drivers
