// Package agent is the warehouse agent: configuration, wiring and lifecycle,
// the ingest pipeline, the MQTT side (embedded mochi broker or an external
// broker through autopaho) and the HTTP API.
//
// Data flow: a device publish reaches a broker adapter, which hands it to the
// Ingester without waiting; the topic's driver decodes and validates it; the
// store's group commit makes the batch durable (dedupe, event row, counter
// change in one transaction); only then is the device acknowledged (PUBACK,
// manual ack to the external broker, HTTP 2xx) and told about rejections on
// its results topic. SQL lives in internal/store, decoding in drivers.
package agent
