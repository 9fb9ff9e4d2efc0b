package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// receiveMaximum is what every benchmark client asks the broker for. It is
// the agent's default (mqtt.receive-maximum), so mosquitto applies the same
// flow control to the bare subscriber as to the agent.
const receiveMaximum uint16 = 1000

// client is a plain paho MQTT 5 client with a clean session. Publish blocks
// until the PUBACK and may be called from several goroutines at once to keep
// that many publishes in flight.
type client struct {
	*paho.Client
}

// dial connects clientID to addr (host:port). onPublish, if not nil, sees
// every message of the client's subscriptions; paho acknowledges each one
// after onPublish returns, so it must be quick.
func dial(ctx context.Context, addr, clientID string, onPublish func(*paho.Publish)) (*client, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("mqtt dial %s: %w", addr, err)
	}
	cfg := paho.ClientConfig{ClientID: clientID, Conn: conn, PacketTimeout: 30 * time.Second}
	if onPublish != nil {
		cfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) {
				onPublish(pr.Packet)
				return true, nil
			},
		}
	}
	c := &client{Client: paho.NewClient(cfg)}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	recvMax := receiveMaximum
	_, err = c.Connect(cctx, &paho.Connect{ // a refusal (reason >= 0x80) is an error
		ClientID: clientID, KeepAlive: 30, CleanStart: true,
		Properties: &paho.ConnectProperties{ReceiveMaximum: &recvMax},
	})
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("mqtt connect %s as %s: %w", addr, clientID, err)
	}
	return c, nil
}

// dialAll connects n clients named prefix-0 … prefix-(n-1).
func dialAll(ctx context.Context, addr, prefix string, n int) ([]*client, error) {
	var cs []*client
	for i := range n {
		c, err := dial(ctx, addr, fmt.Sprintf("%s-%d", prefix, i), nil)
		if err != nil {
			closeAll(cs)
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

func closeAll(cs []*client) {
	for _, c := range cs {
		c.close()
	}
}

// close disconnects; paho waits for its goroutines to end.
func (c *client) close() {
	_ = c.Disconnect(&paho.Disconnect{ReasonCode: 0})
}

// publish sends a QoS 1 message and waits for its PUBACK.
func (c *client) publish(ctx context.Context, topic string, payload []byte) error {
	_, err := c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: payload})
	return err
}

// publishAsync sends a QoS 1 message without waiting for its PUBACK (it
// still waits while the broker's receive maximum is exhausted), so a paced
// sender keeps its schedule whatever the round trip costs.
func (c *client) publishAsync(ctx context.Context, topic string, payload []byte) error {
	_, err := c.PublishWithOptions(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: payload},
		paho.PublishOptions{Method: paho.PublishMethod_AsyncSend})
	return err
}

// subscribe subscribes at QoS 1 and returns once the broker's SUBACK
// confirms it.
func (c *client) subscribe(ctx context.Context, filter string) error {
	sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", filter, err)
	}
	if len(sa.Reasons) != 1 || sa.Reasons[0] != 1 {
		return fmt.Errorf("subscribe %s: granted %v, want QoS 1", filter, sa.Reasons)
	}
	return nil
}

// clearSession removes the persistent session the broker keeps for
// clientID: connecting with a clean start and no session expiry replaces
// it, and disconnecting drops the replacement. The agent's session would
// otherwise queue every event of later runs and replay them into the next
// agent, spoiling its count.
func clearSession(ctx context.Context, addr, clientID string) error {
	c, err := dial(ctx, addr, clientID, nil)
	if err != nil {
		return fmt.Errorf("clear session %s: %w", clientID, err)
	}
	c.close()
	return nil
}
