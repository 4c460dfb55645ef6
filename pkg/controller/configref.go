package controller

// configType is the type of object a workload consumes configuration
// from: its Kind, "ConfigMap" or "Secret".
type configType string

const (
	typeConfigMap configType = "ConfigMap"
	typeSecret    configType = "Secret"
)

// configRef names a ConfigMap or Secret in the workload's own namespace.
type configRef struct {
	typ  configType
	name string
}

// String returns "ConfigMap/name" or "Secret/name", the form used in Events.
func (r configRef) String() string {
	return string(r.typ) + "/" + r.name
}
