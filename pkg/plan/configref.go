package plan

// ConfigType is the type of object a workload consumes configuration
// from: its Kind, "ConfigMap" or "Secret", or "SecretProviderClass" for the
// secrets a Secrets Store CSI driver mounts through a class.
type ConfigType string

const (
	TypeConfigMap ConfigType = "ConfigMap"
	TypeSecret    ConfigType = "Secret"
	// TypeSecretProviderClass is consumed by a CSI volume of the Secrets
	// Store driver; its "content" is the version of each object the driver
	// mounted, as its SecretProviderClassPodStatus objects report them.
	TypeSecretProviderClass ConfigType = "SecretProviderClass"
)

// CSIDriverSecretsStore is the name of the Secrets Store CSI driver.
const CSIDriverSecretsStore = "secrets-store.csi.k8s.io"

// ConfigRef names a ConfigMap or Secret in the workload's own namespace.
type ConfigRef struct {
	Type ConfigType
	Name string
}

// String returns "ConfigMap/name" or "Secret/name", the form used in Events.
func (r ConfigRef) String() string {
	return string(r.Type) + "/" + r.Name
}
