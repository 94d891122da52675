-- Argo CD health check for cube-operator.io/Webhook.
-- Generated from deploy/argocd/health.lua.tmpl by deploy/sync.py; do not edit.
-- Argo CD runs it (gopher-lua, Lua 5.1) with the live object in `obj`; it returns
-- hs = {status = Healthy|Progressing|Degraded|Suspended, message = "..."}.
local hs = {}

-- Ready=False with one of these reasons will not fix itself without a change to the
-- object, its Secret or the provider account: Degraded. Any other reason is a wait.
-- The list is cube_operator.controllers._common.TERMINAL_REASONS.
local terminal = {
  InvalidSpec = true,
  InvalidCredentials = true,
  Forbidden = true,
  WrongSpace = true,
  Unsupported = true,
  ProviderRejected = true,
  ProviderError = true,
  ImmutableFieldChanged = true,
  CrossNamespaceReference = true,
  ExternalResourceNotFound = true,
  SnapshotFailed = true,
  ReceiverDisabled = true,
  DuplicateExternalResource = true,
  ProviderSuspended = true,
  Outbid = true,
  ProvisioningFailed = true,
  SecretConflict = true,
  SecretNotAllowed = true,
  AdoptionRefused = true,
  EndpointNotAllowed = true,
}

local function findCondition(conditions, ctype)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == ctype then
      return c
    end
  end
  return nil
end

-- The condition's message (prefixed by its reason when asked), else `fallback`.
local function describe(c, fallback, withReason)
  if c == nil then
    return fallback
  end
  local hasReason = c.reason ~= nil and c.reason ~= ""
  if c.message ~= nil and c.message ~= "" then
    if withReason and hasReason then
      return c.reason .. ": " .. c.message
    end
    return c.message
  end
  if hasReason then
    return c.reason
  end
  return fallback
end

local meta = obj.metadata or {}
local annotations = meta.annotations or {}
local status = obj.status

if annotations["cube-operator.io/paused"] == "true" then
  hs.status = "Suspended"
  hs.message = "Reconciliation is paused (annotation cube-operator.io/paused=true)"
  return hs
end

if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local generation = meta.generation
local observed = status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  -- No string library in Argo CD's sandbox (useOpenLibs is off by default): concatenate.
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

local ready = findCondition(status.conditions, "Ready")

if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end

if generation ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Ready condition is older than generation " .. generation
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "Ready")
  return hs
end

if ready.status == "False" and terminal[ready.reason] then
  hs.status = "Degraded"
  hs.message = describe(ready, "Not ready", true)
  return hs
end

hs.status = "Progressing"
hs.message = describe(ready, "Not ready yet", true)
return hs
