"""Content negotiation and response helpers shared by the HTTP handlers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from . import errors, protobuf

JSON_TYPE = "application/json"
YAML_TYPE = "application/yaml"
_ACCEPTED = [JSON_TYPE, YAML_TYPE, "application/json;as=Table;v=v1;g=meta.k8s.io",
             "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"]


@dataclass(frozen=True)
class Rendering:
    """What representation the client asked for."""

    form: str = "json"  # json | yaml | table | partial
    version: str = "v1"  # meta.k8s.io version for table/partial forms


def negotiate(accept: str | None) -> Rendering:
    if not accept or not accept.strip():
        return Rendering()
    for part in accept.split(","):
        media, *raw_params = [x.strip() for x in part.split(";")]
        params = dict(p.split("=", 1) for p in raw_params if "=" in p)
        media = media.lower()
        if media in (JSON_TYPE, "*/*", "application/*"):
            as_ = params.get("as")
            if as_ is None:
                return Rendering()
            if params.get("g") != "meta.k8s.io":
                continue
            version = params.get("v", "v1")
            if as_ == "Table" and version in ("v1", "v1beta1"):
                return Rendering("table", version)
            if as_ in ("PartialObjectMetadata", "PartialObjectMetadataList") \
                    and version in ("v1", "v1beta1"):
                return Rendering("partial", version)
            continue
        if media in (YAML_TYPE, "application/x-yaml", "text/yaml"):
            return Rendering("yaml")
    raise errors.not_acceptable(_ACCEPTED)


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def respond(obj: Any, status: int = 200, rendering: Rendering | None = None,
            warnings: list[str] | None = None) -> web.Response:
    headers: dict[str, str] = {}
    if rendering is not None and rendering.form == "yaml":
        body = yaml.safe_dump(obj, sort_keys=False)
        ctype = YAML_TYPE
    else:
        body = dumps(obj)
        ctype = JSON_TYPE
    # Bytes, not text: aiohttp would append "; charset=utf-8", which kube-apiserver does not.
    resp = web.Response(body=body.encode(), status=status, content_type=ctype, headers=headers)
    for w in warnings or []:
        resp.headers.add("Warning", f'299 - {json.dumps(w)}')
    return resp


def error_response(err: errors.APIError) -> web.Response:
    return respond(err.status(), err.code)


def parse_body(raw: bytes, content_type: str) -> Any:
    ctype = (content_type or JSON_TYPE).split(";")[0].strip().lower()
    if ctype == protobuf.PROTOBUF:
        try:
            return protobuf.decode(raw)
        except protobuf.ProtobufError as e:
            raise errors.unsupported_media_type(f"{ctype} ({e})",
                                                [JSON_TYPE, YAML_TYPE]) from None
    if ctype == "application/cbor":
        raise errors.unsupported_media_type(ctype, [JSON_TYPE, YAML_TYPE])
    try:
        if ctype in (YAML_TYPE, "application/x-yaml", "text/yaml"):
            return yaml.safe_load(raw)
        return json.loads(raw or b"null")
    except (ValueError, yaml.YAMLError) as e:
        raise errors.bad_request(f"couldn't get version/kind; json parse error: {e}") from None
