package sdk

import (
	driverpb "github.com/keepsake-dev/keepsake/addons/sdk/proto"
)

// Conversions between the SDK's Go types and their wire form.

func infoToProto(in Info) *driverpb.InfoResponse {
	out := &driverpb.InfoResponse{Name: in.Name, Version: in.Version}
	for _, p := range in.Parameters {
		out.Parameters = append(out.Parameters, &driverpb.Parameter{
			Name: p.Name, Usage: p.Usage, Required: p.Required, Default: p.Default,
		})
	}
	for _, c := range in.Capabilities {
		out.Capabilities = append(out.Capabilities, string(c))
	}
	return out
}

func infoFromProto(in *driverpb.InfoResponse) Info {
	out := Info{Name: in.GetName(), Version: in.GetVersion()}
	for _, p := range in.GetParameters() {
		out.Parameters = append(out.Parameters, Parameter{
			Name: p.GetName(), Usage: p.GetUsage(), Required: p.GetRequired(), Default: p.GetDefault(),
		})
	}
	for _, c := range in.GetCapabilities() {
		out.Capabilities = append(out.Capabilities, Capability(c))
	}
	return out
}

func requestToProto(in Request) *driverpb.Request {
	return &driverpb.Request{
		Target: &driverpb.Target{
			ApiGroup:  in.Target.APIGroup,
			Kind:      in.Target.Kind,
			Name:      in.Target.Name,
			Namespace: in.Target.Namespace,
		},
		Params:      in.Params,
		Credentials: in.Credentials,
		Component:   in.Component,
	}
}

func requestFromProto(in *driverpb.Request) Request {
	t := in.GetTarget()
	return Request{
		Target: Target{
			APIGroup:  t.GetApiGroup(),
			Kind:      t.GetKind(),
			Name:      t.GetName(),
			Namespace: t.GetNamespace(),
		},
		Params:      nonNil(in.GetParams()),
		Credentials: nonNil(in.GetCredentials()),
		Component:   in.GetComponent(),
	}
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func restoredToProto(in Restored) *driverpb.Restored {
	if in.IsZero() {
		return nil
	}
	return &driverpb.Restored{ObjectKind: in.ObjectKind, Objects: in.Objects, Items: in.Items}
}

func restoredFromProto(in *driverpb.Restored) Restored {
	return Restored{ObjectKind: in.GetObjectKind(), Objects: in.GetObjects(), Items: in.GetItems()}
}

// countsFromProto is nil for no counts, so "not said" stays nil.
func countsFromProto(in map[string]uint64) Counts {
	if len(in) == 0 {
		return nil
	}
	return Counts(in)
}
