-- Argo CD health of a hipaa.dev custom resource (the same script for the four kinds),
-- read from the status the hipaa-operator writes: conditions Ready, Synced, Drifted and
-- Compliant, each stamped with the generation it was computed for.
--   Suspended    the hipaa.dev/paused annotation stops every AWS change
--   Progressing  not yet observed at this generation, or creating, waiting on AWS,
--                waiting for a referenced object, deleting
--   Degraded     the spec or AWS refused (Synced=False), a HIPAA control fails, a
--                deletion failed, or driftPolicy Report withholds changes
--   Healthy      Ready=True for the current generation
hs = {}

local function condition(kind)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function describe(c)
  if c.message ~= nil and c.message ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.reason
end

local generation = obj.metadata.generation
if obj.metadata.annotations ~= nil and obj.metadata.annotations["hipaa.dev/paused"] == "true" then
  hs.status = "Suspended"
  hs.message = "paused by the hipaa.dev/paused annotation: AWS is observed, nothing is changed"
  return hs
end

local ready = condition("Ready")
local synced = condition("Synced")
local compliant = condition("Compliant")
if obj.status == nil or ready == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the operator's first reconcile"
  return hs
end
if generation ~= nil and (obj.status.observedGeneration == nil or obj.status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "the operator has not yet observed generation " .. generation
  return hs
end

if obj.metadata.deletionTimestamp ~= nil then
  -- Deleting, DependentsExist, DeletionPaused: on its way; a failed deletion is not.
  if ready.reason == "DeletionFailed" then
    hs.status = "Degraded"
  else
    hs.status = "Progressing"
  end
  hs.message = describe(ready)
  return hs
end

if synced ~= nil and synced.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(synced)
  return hs
end

-- Still being built: controls over resources that do not exist yet fail until they do.
local progressing = {
  Creating = true,
  WaitingForReference = true,
}
if ready.status ~= "True" and progressing[ready.reason] then
  hs.status = "Progressing"
  hs.message = describe(ready)
  return hs
end

if compliant ~= nil and compliant.status == "False" then
  hs.status = "Degraded"
  hs.message = "HIPAA " .. describe(compliant)
  return hs
end

if ready.status == "True" then
  if ready.observedGeneration ~= nil and generation ~= nil and ready.observedGeneration < generation then
    hs.status = "Progressing"
    hs.message = "Ready is for an older generation"
    return hs
  end
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end

hs.status = "Degraded"
hs.message = describe(ready)
return hs
