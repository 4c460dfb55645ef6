package plan

// ConfigType is the type of object a workload consumes configuration
// from: its Kind, "ConfigMap" or "Secret".
type ConfigType string

const (
	TypeConfigMap ConfigType = "ConfigMap"
	TypeSecret    ConfigType = "Secret"
)

// ConfigRef names a ConfigMap or Secret in the workload's own namespace.
type ConfigRef struct {
	Type ConfigType
	Name string
}

// String returns "ConfigMap/name" or "Secret/name", the form used in Events.
func (r ConfigRef) String() string {
	return string(r.Type) + "/" + r.Name
}
