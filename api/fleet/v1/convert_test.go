package fleetv1

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/mamorisec/mamori/internal/fleet"
)

var t0 = time.Date(2026, 11, 24, 1, 2, 3, 456789000, time.UTC)

func sampleEvent() fleet.Event {
	return fleet.Event{ID: "42", Time: t0, AgentID: "agent-1", Host: "h1", Status: fleet.StatusBlock,
		Policy: "p", Control: "exec", Message: "blocked /bin/sh", Container: "web", ContainerID: "abc",
		Image: "busybox", Namespace: "ns", Pod: "pod", Process: fleet.Process{PID: 7, Path: "/bin/sh", Args: []string{"sh", "-c"}, UID: 0, User: "root"},
		Parents: []fleet.Process{{PID: 1, Path: "/init"}}, Count: 3}
}

func sampleInventory() fleet.Inventory {
	return fleet.Inventory{AgentID: "a", Host: "h", Time: t0,
		Containers: []fleet.Container{{ID: "c", Name: "n", Image: "i", ImageDigest: "sha256:x", Runtime: "docker",
			Labels: map[string]string{"k": "v"}, Started: t0, Processes: []fleet.Process{{PID: 3, Path: "/x"}}, Protected: []string{"p"}}},
		Workloads:   []fleet.Workload{{Namespace: "ns", Kind: "Deployment", Name: "w", Labels: map[string]string{"app": "w"}, Pods: []fleet.Pod{{Name: "p", Node: "n", Images: []string{"i"}, Privileged: true}}}},
		Connections: []fleet.Connection{{From: "a", To: "b", Port: 443, Proto: "tcp"}}}
}

func sampleBundle() fleet.PolicyBundle {
	return fleet.PolicyBundle{Revision: 9, Settings: fleet.GroupSettings{AuditOnly: true, ContainerProtection: true, HostProtection: true, FailClosed: true},
		Policies: []json.RawMessage{json.RawMessage(`{"name":"p"}`)}, Scopes: []json.RawMessage{json.RawMessage(`{"name":"s"}`)},
		Bypass: fleet.Bypass{Namespaces: []string{"kube-system"}, Labels: []string{"a=b"}}}
}

// roundTrip converts v to its message, through the protobuf wire format and
// back, and checks the result equals v.
func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   any
		do   func(any) (any, error)
	}{
		{"enroll request", fleet.EnrollRequest{Token: "t", Kind: fleet.KindEnforcer, Hostname: "h", Version: "1", CSR: "csr"}, func(v any) (any, error) {
			m := &EnrollRequest{}
			err := wire(FromEnrollRequest(v.(fleet.EnrollRequest)), m)
			return ToEnrollRequest(m), err
		}},
		{"enroll response", fleet.EnrollResponse{AgentID: "a", Group: "g", Certificate: "c", CA: "ca", NotAfter: t0, RenewFrom: t0.Add(-time.Hour)}, func(v any) (any, error) {
			m := &EnrollResponse{}
			err := wire(FromEnrollResponse(v.(fleet.EnrollResponse)), m)
			return ToEnrollResponse(m), err
		}},
		{"enroll response zero times", fleet.EnrollResponse{AgentID: "a"}, func(v any) (any, error) {
			m := &EnrollResponse{}
			err := wire(FromEnrollResponse(v.(fleet.EnrollResponse)), m)
			return ToEnrollResponse(m), err
		}},
		{"renew", fleet.RenewRequest{AgentID: "a", CSR: "c"}, func(v any) (any, error) {
			m := &RenewRequest{}
			err := wire(FromRenewRequest(v.(fleet.RenewRequest)), m)
			return ToRenewRequest(m), err
		}},
		{"renew response", fleet.RenewResponse{Certificate: "c", NotAfter: t0, RenewFrom: t0}, func(v any) (any, error) {
			m := &RenewResponse{}
			err := wire(FromRenewResponse(v.(fleet.RenewResponse)), m)
			return ToRenewResponse(m), err
		}},
		{"heartbeat", fleet.Heartbeat{AgentID: "a", Hostname: "h", Version: "v", Capabilities: []fleet.Capability{{Name: "seccomp", Available: true, Detail: "d"}}, PolicyRevision: 4, Containers: 2, EventsBuffered: 9}, func(v any) (any, error) {
			m := &Heartbeat{}
			err := wire(FromHeartbeat(v.(fleet.Heartbeat)), m)
			return ToHeartbeat(m), err
		}},
		{"heartbeat reply", fleet.HeartbeatReply{PolicyRevision: 3, Settings: fleet.GroupSettings{FailClosed: true}}, func(v any) (any, error) {
			m := &HeartbeatReply{}
			err := wire(FromHeartbeatReply(v.(fleet.HeartbeatReply)), m)
			return ToHeartbeatReply(m), err
		}},
		{"policy request", fleet.PolicyRequest{AgentID: "a", Since: 5}, func(v any) (any, error) {
			m := &PolicyRequest{}
			err := wire(FromPolicyRequest(v.(fleet.PolicyRequest)), m)
			return ToPolicyRequest(m), err
		}},
		{"bundle", sampleBundle(), func(v any) (any, error) {
			m := &PolicyBundle{}
			err := wire(FromPolicyBundle(v.(fleet.PolicyBundle)), m)
			return ToPolicyBundle(m), err
		}},
		{"empty bundle", fleet.PolicyBundle{}, func(v any) (any, error) {
			m := &PolicyBundle{}
			err := wire(FromPolicyBundle(v.(fleet.PolicyBundle)), m)
			return ToPolicyBundle(m), err
		}},
		{"event batch", fleet.EventBatch{AgentID: "a", Events: []fleet.Event{sampleEvent(), {ID: "1"}}}, func(v any) (any, error) {
			m := &EventBatch{}
			err := wire(FromEventBatch(v.(fleet.EventBatch)), m)
			return ToEventBatch(m), err
		}},
		{"ack", fleet.EventAck{Stored: 5, Duplicates: 2}, func(v any) (any, error) {
			m := &EventAck{}
			err := wire(FromEventAck(v.(fleet.EventAck)), m)
			return ToEventAck(m), err
		}},
		{"inventory", sampleInventory(), func(v any) (any, error) {
			m := &Inventory{}
			err := wire(FromInventory(v.(fleet.Inventory)), m)
			return ToInventory(m), err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.do(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.in) {
				t.Errorf("round trip changed the value:\n got %#v\nwant %#v", got, tt.in)
			}
		})
	}
}

func wire(in, out proto.Message) error {
	b, err := proto.Marshal(in)
	if err != nil {
		return err
	}
	return proto.Unmarshal(b, out)
}

// TestMessageRoundTrip converts messages to the fleet types and back.
func TestMessageRoundTrip(t *testing.T) {
	ev := FromEvent(sampleEvent())
	if got := FromEvent(ToEvent(ev)); !proto.Equal(got, ev) {
		t.Errorf("event: got %v, want %v", got, ev)
	}
	inv := FromInventory(sampleInventory())
	if got := FromInventory(ToInventory(inv)); !proto.Equal(got, inv) {
		t.Errorf("inventory: got %v, want %v", got, inv)
	}
	b := FromPolicyBundle(sampleBundle())
	if got := FromPolicyBundle(ToPolicyBundle(b)); !proto.Equal(got, b) {
		t.Errorf("bundle: got %v, want %v", got, b)
	}
}

// FuzzMessages decodes arbitrary bytes as messages and checks that converting
// them to the fleet types and back is stable after one round.
func FuzzMessages(f *testing.F) {
	for _, m := range []proto.Message{FromEvent(sampleEvent()), FromInventory(sampleInventory()), FromPolicyBundle(sampleBundle())} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev Event
		if proto.Unmarshal(data, &ev) == nil {
			once := ToEvent(&ev)
			if twice := ToEvent(FromEvent(once)); !reflect.DeepEqual(once, twice) {
				t.Errorf("event not stable: %#v vs %#v", once, twice)
			}
		}
		var inv Inventory
		if proto.Unmarshal(data, &inv) == nil {
			once := ToInventory(&inv)
			if twice := ToInventory(FromInventory(once)); !reflect.DeepEqual(once, twice) {
				t.Errorf("inventory not stable: %#v vs %#v", once, twice)
			}
		}
		var b PolicyBundle
		if proto.Unmarshal(data, &b) == nil {
			once := ToPolicyBundle(&b)
			if twice := ToPolicyBundle(FromPolicyBundle(once)); !reflect.DeepEqual(once, twice) {
				t.Errorf("bundle not stable: %#v vs %#v", once, twice)
			}
		}
	})
}

// FuzzFleetJSON decodes arbitrary JSON as fleet types and checks they survive
// the conversion to messages and back.
func FuzzFleetJSON(f *testing.F) {
	for _, v := range []any{sampleEvent(), sampleInventory(), sampleBundle()} {
		b, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev fleet.Event
		if json.Unmarshal(data, &ev) == nil {
			once := ToEvent(FromEvent(ev))
			if twice := ToEvent(FromEvent(once)); !reflect.DeepEqual(once, twice) {
				t.Errorf("event not stable: %#v vs %#v", once, twice)
			}
		}
		var inv fleet.Inventory
		if json.Unmarshal(data, &inv) == nil {
			once := ToInventory(FromInventory(inv))
			if twice := ToInventory(FromInventory(once)); !reflect.DeepEqual(once, twice) {
				t.Errorf("inventory not stable: %#v vs %#v", once, twice)
			}
		}
	})
}
