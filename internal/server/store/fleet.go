package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/mamorisec/mamori/internal/fleet"
	"github.com/mamorisec/mamori/internal/server/query"
)

// RuntimePolicy is a stored runtime policy: the validated document and
// the columns lists and the policy bundle select on.
type RuntimePolicy struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Mode    string `json:"mode"`
	Enabled bool   `json:"enabled"`
	// Document is the policy as JSON (a runtimepolicy.Policy).
	Document json.RawMessage `json:"document"`
	// Revision is the fleet revision of the policy's last change.
	Revision  int64     `json:"revision"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
	UpdatedBy string    `json:"updatedBy,omitempty"`
}

func validRuntimePolicy(p RuntimePolicy) error {
	if p.Name == "" || len(p.Name) > 128 {
		return invalidf("runtime policy name %q: want 1 to 128 characters", p.Name)
	}
	if p.Mode == "" || len(p.Mode) > 32 {
		return invalidf("runtime policy %q: mode %q is not valid", p.Name, p.Mode)
	}
	if !json.Valid(p.Document) {
		return invalidf("runtime policy %q: the document is not valid JSON", p.Name)
	}
	return nil
}

// bumpRevision increments the fleet revision inside tx and returns it.
func (s *Store) bumpRevision(ctx context.Context, tx *sql.Tx) (int64, error) {
	if _, err := s.exec(ctx, tx, "UPDATE fleet_state SET revision = revision + 1, updated = ? WHERE id = 1", s.nowMicros()); err != nil {
		return 0, fmt.Errorf("bumping the fleet revision: %w", err)
	}
	var rev int64
	if err := tx.QueryRowContext(ctx, "SELECT revision FROM fleet_state WHERE id = 1").Scan(&rev); err != nil {
		return 0, fmt.Errorf("reading the fleet revision: %w", err)
	}
	return rev, nil
}

// FleetRevision returns the fleet revision: it grows on every change of
// a runtime policy, the bypass or a group's settings.
func (s *Store) FleetRevision(ctx context.Context) (int64, error) {
	var rev int64
	if err := s.db.QueryRowContext(ctx, "SELECT revision FROM fleet_state WHERE id = 1").Scan(&rev); err != nil {
		return 0, fmt.Errorf("reading the fleet revision: %w", err)
	}
	return rev, nil
}

// Bypass returns the global bypass (by default the kube-system namespace).
func (s *Store) Bypass(ctx context.Context) (fleet.Bypass, error) {
	var b fleet.Bypass
	err := s.db.QueryRowContext(ctx, "SELECT bypass FROM fleet_state WHERE id = 1").Scan(jsonCol{&b})
	if err != nil {
		return b, fmt.Errorf("reading the bypass: %w", err)
	}
	return normalBypass(b), nil
}

func normalBypass(b fleet.Bypass) fleet.Bypass {
	if b.Namespaces == nil {
		b.Namespaces = []string{}
	}
	if b.Labels == nil {
		b.Labels = []string{}
	}
	return b
}

// SetBypass replaces the global bypass and bumps the fleet revision.
func (s *Store) SetBypass(ctx context.Context, b fleet.Bypass) (int64, error) {
	var rev int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if rev, err = s.bumpRevision(ctx, tx); err != nil {
			return err
		}
		_, err = s.exec(ctx, tx, "UPDATE fleet_state SET bypass = ? WHERE id = 1", jsonCol{normalBypass(b)})
		return dbErr(err, "setting the bypass")
	})
	return rev, err
}

const runtimePolicyCols = "rp.id, rp.name, rp.mode, rp.enabled, rp.document, rp.revision, rp.created, rp.updated, rp.updated_by"

func scanRuntimePolicy(p *RuntimePolicy) []any {
	return []any{&p.ID, &p.Name, &p.Mode, &p.Enabled, rawCol{&p.Document}, &p.Revision, timeCol{&p.Created}, timeCol{&p.Updated}, &p.UpdatedBy}
}

// CreateRuntimePolicy stores a new runtime policy; ErrConflict when one
// with its name exists.
func (s *Store) CreateRuntimePolicy(ctx context.Context, p RuntimePolicy) (RuntimePolicy, error) {
	if err := validRuntimePolicy(p); err != nil {
		return RuntimePolicy{}, err
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error { return s.putRuntimePolicy(ctx, tx, &p, true) })
	return p, err
}

// UpdateRuntimePolicy replaces the runtime policy named p.Name.
func (s *Store) UpdateRuntimePolicy(ctx context.Context, p RuntimePolicy) (RuntimePolicy, error) {
	if err := validRuntimePolicy(p); err != nil {
		return RuntimePolicy{}, err
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error { return s.putRuntimePolicy(ctx, tx, &p, false) })
	return p, err
}

// ImportRuntimePolicies creates or replaces every policy in one
// transaction: all are stored or none. It returns the stored policies.
func (s *Store) ImportRuntimePolicies(ctx context.Context, ps []RuntimePolicy) ([]RuntimePolicy, error) {
	for _, p := range ps {
		if err := validRuntimePolicy(p); err != nil {
			return nil, err
		}
	}
	out := make([]RuntimePolicy, len(ps))
	copy(out, ps)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for i := range out {
			var n int
			if err := tx.QueryRowContext(ctx, s.rebind("SELECT COUNT(*) FROM runtime_policies WHERE name = ?"), out[i].Name).Scan(&n); err != nil {
				return dbErr(err, "importing runtime policies")
			}
			if err := s.putRuntimePolicy(ctx, tx, &out[i], n == 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// putRuntimePolicy inserts or updates p inside tx with a new revision.
func (s *Store) putRuntimePolicy(ctx context.Context, tx *sql.Tx, p *RuntimePolicy, create bool) error {
	rev, err := s.bumpRevision(ctx, tx)
	if err != nil {
		return err
	}
	now := s.nowMicros()
	p.Revision, p.Updated = rev, fromMicros(now)
	if create {
		p.Created = p.Updated
		p.ID, err = s.insertID(ctx, tx, `INSERT INTO runtime_policies (name, mode, enabled, document, revision, created, updated, updated_by)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, p.Name, p.Mode, p.Enabled, rawJSON(p.Document), rev, now, now, p.UpdatedBy)
		return dbErr(err, fmt.Sprintf("creating runtime policy %q", p.Name))
	}
	what := fmt.Sprintf("updating runtime policy %q", p.Name)
	err = tx.QueryRowContext(ctx, s.rebind(`UPDATE runtime_policies SET mode = ?, enabled = ?, document = ?, revision = ?, updated = ?, updated_by = ?
		WHERE name = ? RETURNING id, created`), p.Mode, p.Enabled, rawJSON(p.Document), rev, now, p.UpdatedBy, p.Name).Scan(&p.ID, timeCol{&p.Created})
	return dbErr(err, what)
}

// GetRuntimePolicy returns a runtime policy by name.
func (s *Store) GetRuntimePolicy(ctx context.Context, name string) (RuntimePolicy, error) {
	row := s.db.QueryRowContext(ctx, s.rebind("SELECT "+runtimePolicyCols+" FROM runtime_policies rp WHERE rp.name = ?"), name)
	return scanRow(row, scanRuntimePolicy, fmt.Sprintf("runtime policy %q", name))
}

// DeleteRuntimePolicy deletes a runtime policy and bumps the revision.
func (s *Store) DeleteRuntimePolicy(ctx context.Context, name string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, "DELETE FROM runtime_policies WHERE name = ?", name)
		if err := affected(res, err, fmt.Sprintf("deleting runtime policy %q", name)); err != nil {
			return err
		}
		_, err = s.bumpRevision(ctx, tx)
		return err
	})
}

var runtimePolicyList = &listSpec[RuntimePolicy]{
	schema: &query.Schema{Resource: "runtime policies", ID: "rp.id", Fields: []query.Field{
		{Name: "id", Column: "rp.id", Type: query.Int},
		{Name: "name", Column: "rp.name", Type: query.String},
		{Name: "mode", Column: "rp.mode", Type: query.String},
		{Name: "enabled", Column: "rp.enabled", Type: query.Bool},
		{Name: "revision", Column: "rp.revision", Type: query.Int},
		{Name: "updated", Column: "rp.updated", Type: query.Time},
	}},
	from: "runtime_policies rp", cols: runtimePolicyCols, scan: scanRuntimePolicy, def: []query.SortKey{{Field: "name"}},
}

// ListRuntimePolicies returns a page of runtime policies ordered by name.
// Fields: id, name, mode, enabled, revision, updated.
func (s *Store) ListRuntimePolicies(ctx context.Context, opts ListOptions) (Page[RuntimePolicy], error) {
	return list(ctx, s, runtimePolicyList, opts)
}

// EnabledRuntimePolicies returns every enabled runtime policy, by name.
func (s *Store) EnabledRuntimePolicies(ctx context.Context) ([]RuntimePolicy, error) {
	rows, err := s.db.QueryContext(ctx, s.rebind("SELECT "+runtimePolicyCols+" FROM runtime_policies rp WHERE rp.enabled = ? ORDER BY rp.name"), true)
	if err != nil {
		return nil, fmt.Errorf("listing enabled runtime policies: %w", err)
	}
	defer rows.Close()
	var out []RuntimePolicy
	for rows.Next() {
		var p RuntimePolicy
		if err := rows.Scan(scanRuntimePolicy(&p)...); err != nil {
			return nil, fmt.Errorf("listing enabled runtime policies: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// EnforcerGroup is a set of agents sharing an enrollment token and
// settings.
type EnforcerGroup struct {
	ID          int64               `json:"id"`
	Name        string              `json:"name"`
	Description string              `json:"description,omitempty"`
	Settings    fleet.GroupSettings `json:"settings"`
	Created     time.Time           `json:"created"`
	Updated     time.Time           `json:"updated"`
}

// DefaultGroupSettings are a new group's settings: audit only, container
// protection on, host protection off, fail open.
func DefaultGroupSettings() fleet.GroupSettings {
	return fleet.GroupSettings{AuditOnly: true, ContainerProtection: true}
}

// GroupToken is a group's stored enrollment token hash.
type GroupToken struct {
	ID   int64
	Name string
	// Hash is the hex SHA-256 of the token.
	Hash string
}

func validGroup(g EnforcerGroup) error {
	if g.Name == "" || len(g.Name) > 64 {
		return invalidf("enforcer group name %q: want 1 to 64 characters", g.Name)
	}
	if len(g.Description) > 1024 {
		return invalidf("enforcer group %q: the description is longer than 1024 characters", g.Name)
	}
	return nil
}

// CreateEnforcerGroup stores a new group with the hash of its enrollment
// token.
func (s *Store) CreateEnforcerGroup(ctx context.Context, g EnforcerGroup, tokenHash string) (EnforcerGroup, error) {
	if err := validGroup(g); err != nil {
		return EnforcerGroup{}, err
	}
	if tokenHash == "" {
		return EnforcerGroup{}, invalidf("enforcer group %q: an enrollment token hash is required", g.Name)
	}
	now := s.nowMicros()
	var err error
	g.ID, err = s.insertID(ctx, s.db, `INSERT INTO enforcer_groups (name, description, token_hash, settings, created, updated)
		VALUES (?, ?, ?, ?, ?, ?)`, g.Name, g.Description, tokenHash, jsonCol{g.Settings}, now, now)
	if err != nil {
		return EnforcerGroup{}, dbErr(err, fmt.Sprintf("creating enforcer group %q", g.Name))
	}
	g.Created, g.Updated = fromMicros(now), fromMicros(now)
	return g, nil
}

const groupCols = "g.id, g.name, g.description, g.settings, g.created, g.updated"

func scanGroup(g *EnforcerGroup) []any {
	return []any{&g.ID, &g.Name, &g.Description, jsonCol{&g.Settings}, timeCol{&g.Created}, timeCol{&g.Updated}}
}

// GetEnforcerGroup returns a group by name.
func (s *Store) GetEnforcerGroup(ctx context.Context, name string) (EnforcerGroup, error) {
	row := s.db.QueryRowContext(ctx, s.rebind("SELECT "+groupCols+" FROM enforcer_groups g WHERE g.name = ?"), name)
	return scanRow(row, scanGroup, fmt.Sprintf("enforcer group %q", name))
}

// UpdateEnforcerGroup changes a group's description and settings and
// bumps the fleet revision.
func (s *Store) UpdateEnforcerGroup(ctx context.Context, g EnforcerGroup) (EnforcerGroup, error) {
	if err := validGroup(g); err != nil {
		return EnforcerGroup{}, err
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		now := s.nowMicros()
		res, err := s.exec(ctx, tx, "UPDATE enforcer_groups SET description = ?, settings = ?, updated = ? WHERE name = ?",
			g.Description, jsonCol{g.Settings}, now, g.Name)
		if err := affected(res, err, fmt.Sprintf("updating enforcer group %q", g.Name)); err != nil {
			return err
		}
		if _, err := s.bumpRevision(ctx, tx); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, s.rebind("SELECT "+groupCols+" FROM enforcer_groups g WHERE g.name = ?"), g.Name).Scan(scanGroup(&g)...)
	})
	return g, err
}

// SetEnforcerGroupToken replaces a group's enrollment token hash; the
// old token stops working at once.
func (s *Store) SetEnforcerGroupToken(ctx context.Context, name, tokenHash string) error {
	if tokenHash == "" {
		return invalidf("enforcer group %q: an enrollment token hash is required", name)
	}
	res, err := s.exec(ctx, s.db, "UPDATE enforcer_groups SET token_hash = ?, updated = ? WHERE name = ?", tokenHash, s.nowMicros(), name)
	return affected(res, err, fmt.Sprintf("rotating the token of enforcer group %q", name))
}

// DeleteEnforcerGroup deletes a group that has no agents; ErrConflict
// when agents are still enrolled in it.
func (s *Store) DeleteEnforcerGroup(ctx context.Context, name string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		err := tx.QueryRowContext(ctx, s.rebind("SELECT COUNT(*) FROM agents a JOIN enforcer_groups g ON g.id = a.group_id WHERE g.name = ?"), name).Scan(&n)
		if err != nil {
			return dbErr(err, fmt.Sprintf("deleting enforcer group %q", name))
		}
		if n > 0 {
			return fmt.Errorf("deleting enforcer group %q: %d agents are enrolled in it (delete them first): %w", name, n, ErrConflict)
		}
		res, err := s.exec(ctx, tx, "DELETE FROM enforcer_groups WHERE name = ?", name)
		return affected(res, err, fmt.Sprintf("deleting enforcer group %q", name))
	})
}

var groupList = &listSpec[EnforcerGroup]{
	schema: &query.Schema{Resource: "enforcer groups", ID: "g.id", Fields: []query.Field{
		{Name: "id", Column: "g.id", Type: query.Int},
		{Name: "name", Column: "g.name", Type: query.String},
		{Name: "created", Column: "g.created", Type: query.Time},
	}},
	from: "enforcer_groups g", cols: groupCols, scan: scanGroup, def: []query.SortKey{{Field: "name"}},
}

// ListEnforcerGroups returns a page of groups by name. Fields: id, name,
// created.
func (s *Store) ListEnforcerGroups(ctx context.Context, opts ListOptions) (Page[EnforcerGroup], error) {
	return list(ctx, s, groupList, opts)
}

// EnforcerGroupTokens returns every group's token hash, for checking an
// enrollment token against each in constant time.
func (s *Store) EnforcerGroupTokens(ctx context.Context) ([]GroupToken, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id, name, token_hash FROM enforcer_groups ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("reading enrollment tokens: %w", err)
	}
	defer rows.Close()
	var out []GroupToken
	for rows.Next() {
		var t GroupToken
		if err := rows.Scan(&t.ID, &t.Name, &t.Hash); err != nil {
			return nil, fmt.Errorf("reading enrollment tokens: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Agent is an enrolled enforcer, kube-enforcer or gateway.
type Agent struct {
	ID       string `json:"id"`
	Group    string `json:"group"`
	Kind     string `json:"kind"`
	Hostname string `json:"hostname"`
	Version  string `json:"version,omitempty"`
	// Capabilities are the host's preflight results from the last
	// heartbeat.
	Capabilities []fleet.Capability `json:"capabilities"`
	// CertSerial and NotAfter describe the agent's newest certificate.
	CertSerial     string    `json:"certSerial"`
	NotAfter       time.Time `json:"notAfter"`
	Enrolled       time.Time `json:"enrolled"`
	LastSeen       time.Time `json:"lastSeen,omitzero"`
	PolicyRevision int64     `json:"policyRevision"`
	Containers     int       `json:"containers"`
	EventsBuffered int       `json:"eventsBuffered"`
	// Disabled agents cannot renew, heartbeat or send anything.
	Disabled bool `json:"disabled"`
	// GroupID is the group's row ID.
	GroupID int64 `json:"-"`
}

const agentCols = `a.id, g.name, a.group_id, a.kind, a.hostname, a.version, a.capabilities, a.cert_serial, a.not_after, a.enrolled,
	a.last_seen, a.policy_revision, a.containers, a.events_buffered, a.disabled`

const agentFrom = "agents a JOIN enforcer_groups g ON g.id = a.group_id"

func scanAgent(a *Agent) []any {
	return []any{&a.ID, &a.Group, &a.GroupID, &a.Kind, &a.Hostname, &a.Version, jsonCol{&a.Capabilities}, &a.CertSerial, timeCol{&a.NotAfter},
		timeCol{&a.Enrolled}, timeCol{&a.LastSeen}, &a.PolicyRevision, &a.Containers, &a.EventsBuffered, &a.Disabled}
}

// CreateAgent stores a newly enrolled agent in group a.GroupID.
func (s *Store) CreateAgent(ctx context.Context, a Agent) (Agent, error) {
	if a.ID == "" || a.Kind == "" || a.Hostname == "" || len(a.Hostname) > 253 || len(a.Version) > 128 {
		return Agent{}, invalidf("agent %q: an ID, a kind and a hostname of at most 253 characters are required", a.ID)
	}
	if a.Capabilities == nil {
		a.Capabilities = []fleet.Capability{}
	}
	now := s.nowMicros()
	_, err := s.exec(ctx, s.db, `INSERT INTO agents (id, group_id, kind, hostname, version, capabilities, cert_serial, not_after, enrolled)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, a.ID, a.GroupID, a.Kind, a.Hostname, a.Version, jsonCol{a.Capabilities}, a.CertSerial, micros(a.NotAfter), now)
	if err != nil {
		return Agent{}, dbErr(err, fmt.Sprintf("creating agent %q", a.ID))
	}
	return s.GetAgent(ctx, a.ID)
}

// GetAgent returns an agent by ID.
func (s *Store) GetAgent(ctx context.Context, id string) (Agent, error) {
	row := s.db.QueryRowContext(ctx, s.rebind("SELECT "+agentCols+" FROM "+agentFrom+" WHERE a.id = ?"), id)
	return scanRow(row, scanAgent, fmt.Sprintf("agent %q", id))
}

// SetAgentCertificate records an agent's renewed certificate.
func (s *Store) SetAgentCertificate(ctx context.Context, id, serial string, notAfter time.Time) error {
	res, err := s.exec(ctx, s.db, "UPDATE agents SET cert_serial = ?, not_after = ? WHERE id = ?", serial, micros(notAfter), id)
	return affected(res, err, fmt.Sprintf("agent %q", id))
}

// SetAgentDisabled disables or re-enables an agent.
func (s *Store) SetAgentDisabled(ctx context.Context, id string, disabled bool) error {
	res, err := s.exec(ctx, s.db, "UPDATE agents SET disabled = ? WHERE id = ?", disabled, id)
	return affected(res, err, fmt.Sprintf("agent %q", id))
}

// AgentHeartbeat records a heartbeat: the time, version, capabilities and
// counters the agent reported.
func (s *Store) AgentHeartbeat(ctx context.Context, hb fleet.Heartbeat) error {
	caps := hb.Capabilities
	if caps == nil {
		caps = []fleet.Capability{}
	}
	res, err := s.exec(ctx, s.db, `UPDATE agents SET last_seen = ?, version = ?, capabilities = ?, policy_revision = ?, containers = ?, events_buffered = ?
		WHERE id = ?`, s.nowMicros(), hb.Version, jsonCol{caps}, hb.PolicyRevision, hb.Containers, hb.EventsBuffered, hb.AgentID)
	return affected(res, err, fmt.Sprintf("heartbeat of agent %q", hb.AgentID))
}

// HostScope restricts agent lists to hostnames: nil allows every agent,
// an empty HostScope none, otherwise an agent whose hostname matches
// every regular expression of at least one conjunction of Match (see
// Scope.Match for the syntax).
type HostScope struct {
	Match [][]string
}

func (h *HostScope) sql(args *query.Args) string {
	if h == nil {
		return ""
	}
	var ors []string
	for _, conj := range h.Match {
		var ands []string
		for _, re := range conj {
			if _, err := regexp.Compile(re); err != nil || len(re) > maxRegexpLen {
				ands = nil
				break
			}
			if args.Dialect == query.Postgres {
				ands = append(ands, "a.hostname ~ "+args.Add(re))
			} else {
				ands = append(ands, fmt.Sprintf("mamori_regexp(%s, a.hostname) = 1", args.Add(re)))
			}
		}
		if len(ands) > 0 {
			ors = append(ors, "("+strings.Join(ands, " AND ")+")")
		}
	}
	if len(ors) == 0 {
		return "1=0"
	}
	return "(" + strings.Join(ors, " OR ") + ")"
}

var agentSchema = &query.Schema{Resource: "agents", ID: "a.id", StringID: true, Fields: []query.Field{
	{Name: "id", Column: "a.id", Type: query.String},
	{Name: "group", Column: "g.name", Type: query.String},
	{Name: "kind", Column: "a.kind", Type: query.String},
	{Name: "hostname", Column: "a.hostname", Type: query.String},
	{Name: "version", Column: "a.version", Type: query.String},
	{Name: "lastSeen", Column: "a.last_seen", Type: query.Time},
	{Name: "enrolled", Column: "a.enrolled", Type: query.Time},
	{Name: "disabled", Column: "a.disabled", Type: query.Bool},
}}

// ListAgents returns a page of agents in hosts, by hostname. Fields: id,
// group, kind, hostname, version, lastSeen, enrolled, disabled.
func (s *Store) ListAgents(ctx context.Context, opts ListOptions, hosts *HostScope) (Page[Agent], error) {
	return list(ctx, s, &listSpec[Agent]{schema: agentSchema, from: agentFrom, cols: agentCols, scan: scanAgent,
		def: []query.SortKey{{Field: "hostname"}},
		where: func(a *query.Args) []string {
			if c := hosts.sql(a); c != "" {
				return []string{c}
			}
			return nil
		}}, opts)
}

// RecordRuntimeEvent marks event eventID of agentID as stored in the
// audit trail at seq; ErrConflict when it already was.
func (s *Store) RecordRuntimeEvent(ctx context.Context, agentID, eventID string, seq int64) error {
	_, err := s.exec(ctx, s.db, "INSERT INTO runtime_events (agent_id, event_id, audit_seq, received) VALUES (?, ?, ?, ?)",
		agentID, eventID, seq, s.nowMicros())
	return dbErr(err, fmt.Sprintf("runtime event %q of agent %q", eventID, agentID))
}

// RuntimeEventSeen reports whether event eventID of agentID was stored.
func (s *Store) RuntimeEventSeen(ctx context.Context, agentID, eventID string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.rebind("SELECT COUNT(*) FROM runtime_events WHERE agent_id = ? AND event_id = ?"), agentID, eventID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("runtime event %q of agent %q: %w", eventID, agentID, err)
	}
	return n > 0, nil
}

// PutInventory replaces the inventory of inv.AgentID.
func (s *Store) PutInventory(ctx context.Context, inv fleet.Inventory) error {
	if inv.AgentID == "" {
		return invalidf("inventory: the agent ID is required")
	}
	_, err := s.exec(ctx, s.db, `INSERT INTO inventories (agent_id, inventory, time, received) VALUES (?, ?, ?, ?)
		ON CONFLICT (agent_id) DO UPDATE SET inventory = excluded.inventory, time = excluded.time, received = excluded.received`,
		inv.AgentID, jsonCol{inv}, micros(inv.Time), s.nowMicros())
	return dbErr(err, fmt.Sprintf("inventory of agent %q", inv.AgentID))
}

// AgentInventory is an agent with its latest inventory.
type AgentInventory struct {
	Agent     Agent
	Inventory fleet.Inventory
}

// Inventories returns the latest inventory of every enabled agent seen
// at or after since, by hostname.
func (s *Store) Inventories(ctx context.Context, since time.Time) ([]AgentInventory, error) {
	rows, err := s.db.QueryContext(ctx, s.rebind("SELECT "+agentCols+", inv.inventory FROM "+agentFrom+
		" JOIN inventories inv ON inv.agent_id = a.id WHERE a.disabled = ? AND a.last_seen >= ? ORDER BY a.hostname, a.id"), false, micros(since))
	if err != nil {
		return nil, fmt.Errorf("reading inventories: %w", err)
	}
	defer rows.Close()
	var out []AgentInventory
	for rows.Next() {
		var ai AgentInventory
		if err := rows.Scan(append(scanAgent(&ai.Agent), jsonCol{&ai.Inventory})...); err != nil {
			return nil, fmt.Errorf("reading inventories: %w", err)
		}
		out = append(out, ai)
	}
	return out, rows.Err()
}
