package gateway

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	fleetv1 "github.com/mamorisec/mamori/api/fleet/v1"
	"github.com/mamorisec/mamori/internal/fleet"
)

// service implements fleetv1.FleetServer; the interceptors have put the
// authenticated agent id in every call's context except Enroll's.
type service struct {
	fleetv1.UnimplementedFleetServer
	g *Gateway
}

func (s *service) Enroll(ctx context.Context, m *fleetv1.EnrollRequest) (*fleetv1.EnrollResponse, error) {
	req := fleetv1.ToEnrollRequest(m)
	if req.Token == "" || req.CSR == "" {
		return nil, status.Error(codes.InvalidArgument, "enroll: token and csr are required")
	}
	resp, err := s.g.cfg.Backend.Enroll(ctx, req)
	if err != nil {
		s.g.cfg.Logger.Warn("enrollment refused", "hostname", req.Hostname, "err", err)
		return nil, backendError("enroll", err)
	}
	return fleetv1.FromEnrollResponse(resp), nil
}

func (s *service) Renew(ctx context.Context, m *fleetv1.RenewRequest) (*fleetv1.RenewResponse, error) {
	req := fleetv1.ToRenewRequest(m)
	req.AgentID = agentFrom(ctx)
	resp, err := s.g.cfg.Backend.Renew(ctx, req)
	if err != nil {
		return nil, backendError("renew", err)
	}
	return fleetv1.FromRenewResponse(resp), nil
}

func (s *service) Heartbeat(ctx context.Context, m *fleetv1.Heartbeat) (*fleetv1.HeartbeatReply, error) {
	hb := fleetv1.ToHeartbeat(m)
	hb.AgentID = agentFrom(ctx)
	reply, err := s.g.cfg.Backend.Heartbeat(ctx, hb)
	if err != nil {
		return nil, backendError("heartbeat", err)
	}
	if reply.PolicyRevision != hb.PolicyRevision {
		s.g.notify(hb.AgentID)
	}
	return fleetv1.FromHeartbeatReply(reply), nil
}

func (s *service) WatchPolicies(m *fleetv1.PolicyRequest, stream grpc.ServerStreamingServer[fleetv1.PolicyBundle]) error {
	ctx := stream.Context()
	agent := agentFrom(ctx)
	wake, cancel := s.g.subscribe(agent)
	defer cancel()
	tick := time.NewTicker(s.g.cfg.PollInterval)
	defer tick.Stop()
	since, sent := m.GetSince(), false
	for {
		b, err := s.g.cfg.Backend.Policies(ctx, fleet.PolicyRequest{AgentID: agent, Since: since})
		if err != nil {
			return backendError("policies", err)
		}
		if !sent || b.Revision != since {
			if err := stream.Send(fleetv1.FromPolicyBundle(b)); err != nil {
				return err
			}
			since, sent = b.Revision, true
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-s.g.stopping:
			return status.Error(codes.Unavailable, "gateway shutting down")
		case <-tick.C:
		case <-wake:
		}
	}
}

func (s *service) SendEvents(ctx context.Context, m *fleetv1.EventBatch) (*fleetv1.EventAck, error) {
	batch := fleetv1.ToEventBatch(m)
	batch.AgentID = agentFrom(ctx)
	if n := len(batch.Events); n > s.g.cfg.EventBurst {
		return nil, status.Errorf(codes.InvalidArgument, "events: batch of %d events exceeds the limit of %d", n, s.g.cfg.EventBurst)
	}
	for i := range batch.Events {
		if batch.Events[i].ID == "" {
			return nil, status.Errorf(codes.InvalidArgument, "events: event %d has no id", i)
		}
		batch.Events[i].AgentID = batch.AgentID
	}
	if wait := s.g.limiter.take(batch.AgentID, len(batch.Events), time.Now()); wait > 0 {
		return nil, status.Error(codes.ResourceExhausted, fmt.Sprintf("events: rate limit of agent %s exceeded, retry in %s", batch.AgentID, wait.Round(time.Millisecond)))
	}
	ack, err := s.g.cfg.Backend.Events(ctx, batch)
	if err != nil {
		return nil, backendError("events", err)
	}
	return fleetv1.FromEventAck(ack), nil
}

func (s *service) ReportInventory(ctx context.Context, m *fleetv1.Inventory) (*fleetv1.InventoryAck, error) {
	inv := fleetv1.ToInventory(m)
	inv.AgentID = agentFrom(ctx)
	if err := s.g.cfg.Backend.Inventory(ctx, inv); err != nil {
		return nil, backendError("inventory", err)
	}
	return &fleetv1.InventoryAck{}, nil
}
