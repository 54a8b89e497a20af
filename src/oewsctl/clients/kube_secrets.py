"""The Kubernetes side of secrets: the app Secret, ESO's objects, the pod template hash.

Thin calls on the shared Kube layer; "not found" is ``None`` so the runbook can say
what to do (usually: run ``deploy`` first). Secret ``data`` is
handled as the API stores it (base64 strings) and never formatted into text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from oewsctl.clients.kube import KindNotServed, Kube
from oewsctl.core.errors import OewsctlError

ESO_API = "external-secrets.io/v1"


@dataclass(frozen=True)
class Condition:
    """One status condition (ESO's ``Ready``, a Deployment's ``Progressing``), or "Unknown" when absent."""

    status: str = "Unknown"
    reason: str = ""
    message: str = "no status yet (is External Secrets Operator running?)"

    @property
    def true(self) -> bool:
        return self.status == "True"

    @classmethod
    def of(cls, obj: dict[str, Any], kind: str) -> Condition:
        for cond in obj.get("status", {}).get("conditions") or []:
            if cond.get("type") == kind:
                return cls(str(cond.get("status", "Unknown")), cond.get("reason") or "", cond.get("message") or "")
        return cls()

    def as_dict(self) -> dict[str, Any]:
        return {"ready": self.status, "reason": self.reason, "message": self.message}


class ClusterSecrets:
    """Secrets-related objects in the app namespace, through the shared :class:`Kube` layer."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace

    # Secrets
    def secret_data(self, name: str) -> dict[str, str] | None:
        """The Secret's ``data`` (base64 values), ``{}`` when empty, None when it does not exist."""
        secret = self.kube.get("v1", "Secret", name, self.namespace)
        return None if secret is None else dict(secret.get("data") or {})

    def write_secret_keys(self, name: str, encoded: dict[str, str]) -> bool:
        """Set keys (base64 values) in one request, creating the Secret if needed; True if created."""
        if self.kube.get("v1", "Secret", name, self.namespace) is None:
            self.kube.create({"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": name, "namespace": self.namespace}, "data": encoded})
            return True
        self.kube.patch("v1", "Secret", name, self.namespace, {"data": encoded})
        return False

    def ensure_namespace(self) -> None:
        self.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}})

    # External Secrets Operator
    def _eso(self, kind: str, name: str) -> dict[str, Any] | None:
        try:
            return self.kube.get(ESO_API, kind, name, self.namespace)
        except KindNotServed:
            raise OewsctlError(
                f"the cluster does not serve {kind} ({ESO_API}): External Secrets Operator is not installed",
                hint="run `oewsctl secrets bootstrap`, then `oewsctl deploy`",
            ) from None

    def external_secret(self, name: str) -> dict[str, Any] | None:
        return self._eso("ExternalSecret", name)

    def secret_store(self, name: str) -> dict[str, Any] | None:
        return self._eso("SecretStore", name)

    def annotate_external_secret(self, name: str, annotations: dict[str, str]) -> None:
        self.kube.patch(ESO_API, "ExternalSecret", name, self.namespace, {"metadata": {"annotations": annotations}})

    @staticmethod
    def mapping(external_secret: dict[str, Any]) -> dict[str, str]:
        """``{secretKey: remote vault name}`` from the ExternalSecret's ``spec.data``."""
        return {
            item["secretKey"]: item.get("remoteRef", {}).get("key", "")
            for item in external_secret.get("spec", {}).get("data") or []
            if "secretKey" in item
        }

    # The Deployment's pod template
    def pod_annotations(self, deployment: str) -> dict[str, str] | None:
        """The pod template's annotations, None when the Deployment does not exist."""
        dep = self.kube.get("apps/v1", "Deployment", deployment, self.namespace)
        if dep is None:
            return None
        return dict(dep.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations") or {})

    def set_pod_annotation(self, deployment: str, key: str, value: str) -> None:
        """A pod template change: the Deployment controller rolls the pods once."""
        self.kube.patch("apps/v1", "Deployment", deployment, self.namespace, {"spec": {"template": {"metadata": {"annotations": {key: value}}}}})
