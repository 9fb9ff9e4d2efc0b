// Package agent is the warehouse role: configuration, wiring and lifecycle,
// the MQTT side (embedded mochi broker or an external broker through
// autopaho), the HTTP API, holds, alerts, live levels and file drops.
//
// Data flow: a device publish reaches a broker adapter, which hands it to
// the ingester (internal/ingest) without waiting; the topic's driver
// decodes and validates it; the store's group commit (internal/store) makes
// the batch durable (dedupe, event row, counter change in one transaction);
// only then is the device acknowledged (PUBACK, manual ack to the external
// broker, HTTP 2xx) and told about rejections on its results topic. Only
// cmd/ imports this package.
package agent
