"""Short-lived ServiceAccount tokens from the TokenRequest API (what ``kubectl create token`` calls).

A TokenRequest token expires on its own and is never stored in the cluster, unlike a
``kubernetes.io/service-account-token`` Secret, which lives until someone deletes it.
The API server refuses a TTL under 10 minutes and may shorten a long one: the expiry it
answers is the one to report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from oewsctl.clients.kube import Kube
from oewsctl.core.errors import OewsctlError

MIN_TTL_SECONDS = 600
"""The API server's floor (ValidateTokenRequest: "may not specify a duration less than 10 minutes")."""


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires: datetime


def request_token(kube: Kube, namespace: str, account: str, ttl_seconds: int, *, missing_hint: str) -> IssuedToken:
    """A bearer token for ServiceAccount ``namespace/account`` valid ``ttl_seconds`` (default audience)."""
    body = k8s.AuthenticationV1TokenRequest(
        api_version="authentication.k8s.io/v1",
        kind="TokenRequest",
        spec=k8s.V1TokenRequestSpec(expiration_seconds=ttl_seconds, audiences=[]),
    )
    what = f"TokenRequest for ServiceAccount {namespace}/{account}"
    with kube.errors(what):
        try:
            answer = k8s.CoreV1Api(kube.api_client).create_namespaced_service_account_token(name=account, namespace=namespace, body=body)
        except ApiException as exc:
            if exc.status == 404:
                raise OewsctlError(f"{what}: the ServiceAccount does not exist", hint=missing_hint) from None
            raise
    status = answer.status
    return IssuedToken(token=status.token, expires=status.expiration_timestamp)
