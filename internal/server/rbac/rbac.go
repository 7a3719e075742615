// Package rbac is the console server's authorization model: roles grant
// view or edit permissions on resource types, application scopes restrict
// them to a subset of artifacts, infrastructure and workloads, and
// principals (users, API tokens) hold role bindings on scopes.
//
// Every decision is deny by default. Decide answers a question about one
// object; Filter describes what a list query must be restricted to, in a
// shape the store compiles to SQL. docs/rbac.md describes the model.
package rbac

import "slices"

// ResourceType names a kind of object the server protects.
type ResourceType string

// The resource types of the console.
const (
	Images            ResourceType = "images"
	Scans             ResourceType = "scans"
	Vulnerabilities   ResourceType = "vulnerabilities"
	Registries        ResourceType = "registries"
	AssurancePolicies ResourceType = "assurance_policies"
	RuntimePolicies   ResourceType = "runtime_policies"
	Users             ResourceType = "users"
	Roles             ResourceType = "roles"
	Scopes            ResourceType = "scopes"
	Tokens            ResourceType = "tokens"
	Audit             ResourceType = "audit"
	Settings          ResourceType = "settings"
	Enforcers         ResourceType = "enforcers"
	Exceptions        ResourceType = "exceptions"
	EventTypes        ResourceType = "event_types"
	System            ResourceType = "system"
)

var resourceTypes = []ResourceType{
	Images, Scans, Vulnerabilities, Registries, AssurancePolicies,
	RuntimePolicies, Users, Roles, Scopes, Tokens, Audit, Settings,
	Enforcers, Exceptions, EventTypes, System,
}

// ResourceTypes returns every resource type, in a fixed order.
func ResourceTypes() []ResourceType { return slices.Clone(resourceTypes) }

// Valid reports whether t is a known resource type.
func (t ResourceType) Valid() bool { return slices.Contains(resourceTypes, t) }

// Action is what a principal wants to do with a resource. Edit implies View.
//
// Triggering a scan is an Edit on Scans (it creates a scan); there is no
// separate "scan" action.
type Action string

// The actions.
const (
	View Action = "view"
	Edit Action = "edit"
)

// Actions returns every action, in a fixed order.
func Actions() []Action { return []Action{View, Edit} }

// Valid reports whether a is a known action.
func (a Action) Valid() bool { return a == View || a == Edit }

// Class says how application scopes apply to a resource type.
type Class int

// The resource classes.
const (
	// ClassScoped resources are objects with attributes (registry, image
	// name, namespace...) matched against the binding's scopes.
	ClassScoped Class = iota
	// ClassShared resources (policies, event types) are catalogs every
	// scoped user may read; changing them affects everyone, so Edit
	// requires a binding on the Global scope.
	ClassShared
	// ClassGlobal resources (users, roles, tokens, audit, settings...) are
	// administrative: any action requires a binding on the Global scope.
	ClassGlobal
)

// String returns "scoped", "shared" or "global".
func (c Class) String() string {
	switch c {
	case ClassScoped:
		return "scoped"
	case ClassShared:
		return "shared"
	}
	return "global"
}

// ClassOf returns the class of t. Unknown types are ClassGlobal.
func ClassOf(t ResourceType) Class {
	switch t {
	case Images, Scans, Vulnerabilities, Registries, Exceptions, Enforcers:
		return ClassScoped
	case AssurancePolicies, RuntimePolicies, EventTypes:
		return ClassShared
	}
	return ClassGlobal
}

// Attr names an attribute of a resource that scopes restrict.
type Attr string

// The attributes.
const (
	AttrRegistry  Attr = "registry"
	AttrImage     Attr = "image"
	AttrCluster   Attr = "cluster"
	AttrHost      Attr = "host"
	AttrNamespace Attr = "namespace"
	AttrContainer Attr = "container"
	AttrLabel     Attr = "label"
)

// relevant reports whether scope conditions on attr apply to resources of
// type t. Conditions on other attributes are dropped for t: a registry has
// no image name, an enforcer no namespace.
func relevant(t ResourceType, attr Attr) bool {
	switch t {
	case Registries:
		return attr == AttrRegistry
	case Enforcers:
		return attr == AttrCluster || attr == AttrHost
	}
	return true
}

// Attributes describe one object for a scope check. Empty fields are
// unknown and never match a restriction on them.
type Attributes struct {
	// Registry is the registry host name, e.g. "registry.example.com".
	Registry string
	// Image is the repository name including the registry host, without
	// tag or digest, e.g. "registry.example.com/team-a/app".
	Image string
	// Cluster and Host locate an enforcer or a running workload.
	Cluster, Host string
	// Namespace, Labels and Container describe a running workload.
	Namespace string
	Labels    map[string]string
	Container string
}

func (a Attributes) get(attr Attr) string {
	switch attr {
	case AttrRegistry:
		return a.Registry
	case AttrImage:
		return a.Image
	case AttrCluster:
		return a.Cluster
	case AttrHost:
		return a.Host
	case AttrNamespace:
		return a.Namespace
	case AttrContainer:
		return a.Container
	}
	return ""
}
