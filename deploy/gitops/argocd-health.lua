-- Argo CD health for ChatRoom and ChatLoggingConfiguration (kstatus conditions written by the operator).
-- Installed by argocd-cm.yaml for both kinds; tests/cluster/deploy.rs runs it against real statuses.
local hs = {}
local annotations = obj.metadata.annotations or {}
if annotations["ivschat.dev/paused"] == "true" then
  hs.status = "Suspended"
  hs.message = "Paused by the ivschat.dev/paused annotation"
  return hs
end
if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator"
  return hs
end
if obj.metadata.generation ~= nil and obj.status.observedGeneration ~= obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe the latest spec"
  return hs
end
local ready = nil
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Stalled" and condition.status == "True" then
    hs.status = "Degraded"
    hs.message = (condition.reason or "Stalled") .. ": " .. (condition.message or "")
    return hs
  end
  if condition.type == "Ready" then
    ready = condition
  end
end
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator"
elseif ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ""
else
  hs.status = "Progressing"
  hs.message = (ready.reason or "NotReady") .. ": " .. (ready.message or "")
end
return hs
