package ingest

import (
	"errors"
	"sync"
	"time"

	"github.com/edgestock/edgestock/drivers"
	"github.com/edgestock/edgestock/internal/httpjson"
)

// Input limits (SPEC §6).
const (
	// MaxMQTTPayload is the largest payload ingested; a larger one (up to
	// the broker's packet limit) is refused too_large and quarantined with
	// its first quarantineSample bytes.
	MaxMQTTPayload = 256 << 10
	// MaxHTTPBody is the HTTP request body limit.
	MaxHTTPBody = httpjson.MaxBody
	// quarantineSample is how much of an oversized payload is kept (MQTT,
	// HTTP and file drops alike).
	quarantineSample = drivers.QuarantineSample
)

// ErrRetainedDeviceTopic is why a retained message on a device topic is
// refused: a device topic is never retained (the broker would hand it to
// the agent again on every subscribe, and to anyone as current state).
var ErrRetainedDeviceTopic = errors.New("a device topic is never retained: publish with RETAIN=0")

// limiter is a per-device token bucket: rate messages per second, bursts
// up to burst. Refused messages are rejected rate_limited and quarantined,
// never dropped in silence.
type limiter struct {
	rate, burst float64

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets bounds memory under a flood of distinct device IDs: past it the
// idle buckets are forgotten (a forgotten bucket starts full again).
const maxBuckets = 100_000

func newLimiter(rate, burst float64) *limiter {
	l := &limiter{buckets: map[string]*bucket{}}
	l.set(rate, burst)
	return l
}

// set changes the limits (a reload); rate 0 disables them.
func (l *limiter) set(rate, burst float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rate, l.burst = rate, max(burst, 1)
}

// allow takes one token from device's bucket.
func (l *limiter) allow(device string, at time.Time) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rate <= 0 {
		return true
	}
	b, ok := l.buckets[device]
	if !ok {
		if len(l.buckets) >= maxBuckets {
			for d, x := range l.buckets {
				if at.Sub(x.last).Seconds()*l.rate >= l.burst {
					delete(l.buckets, d)
				}
			}
		}
		b = &bucket{tokens: l.burst, last: at}
		l.buckets[device] = b
	}
	b.tokens = min(l.burst, b.tokens+at.Sub(b.last).Seconds()*l.rate)
	b.last = at
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// admit applies the limits to a message before it is decoded; a refused
// message becomes one rejection to quarantine.
func (in *Ingester) admit(msg drivers.Message, maxPayload int) []drivers.Item {
	if maxPayload > 0 && len(msg.Payload) > maxPayload {
		return []drivers.Item{{Rejected: drivers.Reject("", drivers.ReasonTooLarge, "payload of %d bytes: at most %d (first %d bytes kept)",
			len(msg.Payload), maxPayload, quarantineSample), Raw: msg.Payload[:quarantineSample]}}
	}
	if !in.limits.allow(msg.Device, msg.ReceivedAt) {
		return []drivers.Item{{Rejected: drivers.Reject("", drivers.ReasonRateLimited, "device %s is over its rate limit", msg.Device), Raw: msg.Payload}}
	}
	return nil
}
