package k6

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/grafana/sobek"

	"github.com/salvopush/salvo/sender"
)

// silentPayload is the APNs payload of a silent (background) push.
const silentPayload = `{"aps":{"content-available":1}}`

// APNsMessageOptions is the optional second argument of push.apns(): the notification to
// send. Empty fields take the silent defaults: a background push (priority 5) with
// silentPayload, the client's topic and campaign.
type APNsMessageOptions struct {
	// Payload is the JSON payload, as an object or a JSON string.
	Payload any `js:"payload"`
	// PushType is apns-push-type; default "background". "alert" for a visible notification.
	PushType string `js:"pushType"`
	// Priority is apns-priority; default 5 for background pushes, 10 otherwise.
	Priority int `js:"priority"`
	// Topic is apns-topic; default the client's (the mock's bundle ID).
	Topic string `js:"topic"`
	// CollapseID is apns-collapse-id; default the client's campaign.
	CollapseID string `js:"collapseId"`
	// Expiration is apns-expiration in Unix seconds; 0 means deliver now or never.
	Expiration int64 `js:"expiration"`
}

// FCMMessageOptions is the optional second argument of push.fcm(). Empty fields take the
// silent defaults: a data-only message {"campaign_id": campaign} with high priority and the
// campaign as collapse key.
type FCMMessageOptions struct {
	Data        map[string]string `js:"data"`
	Title       string            `js:"title"`
	Body        string            `js:"body"`
	Priority    string            `js:"priority"`
	CollapseKey string            `js:"collapseKey"`
	// TTL is android.ttl as a duration ("60s"); empty is the provider's default.
	TTL string `js:"ttl"`
}

// silentAPNs is the default APNs message of a client.
func silentAPNs(topic, campaign string) *sender.APNsMessage {
	return &sender.APNsMessage{Topic: topic, PushType: "background", Priority: 5, CollapseID: campaign,
		Payload: []byte(silentPayload)}
}

// silentFCM is the default FCM message of a client.
func silentFCM(project, campaign string) *sender.FCMMessage {
	return &sender.FCMMessage{Project: project, Data: map[string]string{"campaign_id": campaign},
		CollapseKey: campaign, Priority: "high"}
}

// apnsMessage converts push.apns()'s message argument; undefined gives the default.
func (p *pushClient) apnsMessage(v sobek.Value) (*sender.APNsMessage, error) {
	return convert(p, v, p.defAPNs, &p.lastAPNs, func(o *APNsMessageOptions) (*sender.APNsMessage, error) {
		m := *p.defAPNs
		switch pl := o.Payload.(type) {
		case nil:
		case string:
			m.Payload = []byte(pl)
		default:
			b, err := json.Marshal(pl)
			if err != nil {
				return nil, fmt.Errorf("salvo: push.apns message payload: %w", err)
			}
			m.Payload = b
		}
		if trimmed := bytes.TrimSpace(m.Payload); len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
			return nil, fmt.Errorf("salvo: push.apns message payload: want a JSON object, got %.60q", m.Payload)
		}
		if o.PushType != "" {
			m.PushType = o.PushType
			if m.PushType != "background" {
				m.Priority = 10
			}
		}
		if o.Priority != 0 {
			m.Priority = o.Priority
		}
		if o.Topic != "" {
			m.Topic = o.Topic
		}
		if o.CollapseID != "" {
			m.CollapseID = o.CollapseID
		}
		if o.Expiration > 0 {
			m.Expiration = time.Unix(o.Expiration, 0)
		}
		return p.mi.root.messages.apns(&m), nil
	})
}

// fcmMessage converts push.fcm()'s message argument; undefined gives the default.
func (p *pushClient) fcmMessage(v sobek.Value) (*sender.FCMMessage, error) {
	return convert(p, v, p.defFCM, &p.lastFCM, func(o *FCMMessageOptions) (*sender.FCMMessage, error) {
		m := *p.defFCM
		if o.Data != nil || o.Title != "" || o.Body != "" {
			m.Data = o.Data
		}
		m.Title, m.Body = o.Title, o.Body
		if o.Priority != "" {
			m.Priority = o.Priority
		}
		if o.CollapseKey != "" {
			m.CollapseKey = o.CollapseKey
		}
		if o.TTL != "" {
			ttl, err := time.ParseDuration(o.TTL)
			if err != nil || ttl < 0 {
				return nil, fmt.Errorf("salvo: push.fcm message ttl %q: want a duration such as \"60s\"", o.TTL)
			}
			m.TTL = ttl
		}
		return p.mi.root.messages.fcm(&m), nil
	})
}

// convert turns a call's message argument into a message: def when there is none, the
// previous result when the script passes the same object again (a message defined once and
// sent every iteration is converted once per VU), else build's result from the object's
// fields.
func convert[O, M any](p *pushClient, v sobek.Value, def *M, memo *msgMemo[M], build func(*O) (*M, error)) (*M, error) {
	if absent(v) {
		return def, nil
	}
	rt := p.mi.vu.Runtime()
	obj := v.ToObject(rt)
	if memo.obj == obj {
		return memo.msg, nil
	}
	var o O
	if err := rt.ExportTo(v, &o); err != nil {
		return nil, fmt.Errorf("salvo: push message: %w", err)
	}
	m, err := build(&o)
	if err != nil {
		return nil, err
	}
	*memo = msgMemo[M]{obj: obj, msg: m}
	return m, nil
}

// maxInterned bounds the messages a process keeps shared; beyond it new messages are used
// as they are.
const maxInterned = 1024

// messageCache gives equal messages one pointer for the whole process. The burst FCM
// transport reuses its rendered request while consecutive Sends pass the same message
// pointer, so VUs sending equal messages must pass the same pointer, or every call would
// render its request and header template again.
type messageCache struct {
	mu   sync.Mutex
	apnM map[string]*sender.APNsMessage
	fcmM map[string]*sender.FCMMessage
}

func newMessageCache() *messageCache {
	return &messageCache{apnM: map[string]*sender.APNsMessage{}, fcmM: map[string]*sender.FCMMessage{}}
}

// apns returns the process's copy of m.
func (c *messageCache) apns(m *sender.APNsMessage) *sender.APNsMessage {
	return intern(&c.mu, c.apnM, m)
}

// fcm returns the process's copy of m.
func (c *messageCache) fcm(m *sender.FCMMessage) *sender.FCMMessage {
	return intern(&c.mu, c.fcmM, m)
}

// intern returns the pointer stored for m's JSON form, storing m when there is none.
func intern[M any](mu *sync.Mutex, into map[string]*M, m *M) *M {
	b, err := json.Marshal(m)
	if err != nil {
		return m
	}
	mu.Lock()
	defer mu.Unlock()
	if got, ok := into[string(b)]; ok {
		return got
	}
	if len(into) < maxInterned {
		into[string(b)] = m
	}
	return m
}
