// Package ingest turns device messages into durable events for both roles
// (the agent's MQTT, HTTP and file drops; the hub's central writes): the
// per-device limits, the topic's driver, the id checks that keep serial
// scans and POS tickets exactly-once, one store batch, and the per-event
// results once the batch is durable. POST /v1/events is served here, once,
// for the agent and the hub.
package ingest
