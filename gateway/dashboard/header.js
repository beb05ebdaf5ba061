// The header: the fleet's status, the healing policy in force, and the pause/resume button.

import { fetchPolicy } from "./api.js";
import { $ } from "./dom.js";
import { state } from "./state.js";
import { FLEET_TONE } from "./widgets.js";

export function renderHeader() {
  const pill = $("fleet-pill");
  const status = state.health?.status;
  pill.className = `pill tone-${(status && FLEET_TONE[status]) || "muted"}`;
  pill.textContent = status ? `fleet ${status}` : "fleet …";
  pill.dataset.status = status || "unknown";

  const healing = $("healing-state");
  const toggle = $("pause-toggle");
  const policy = state.policy?.policy;
  const policyHealth = state.health?.policy;
  const invalid = policyHealth?.invalid;
  if (policyHealth && invalid) {
    // GET /policy refuses an invalid stored policy; /health says why and what stays in force.
    healing.className = "pill tone-bad";
    healing.textContent = "policy invalid";
    healing.dataset.state = "policy-invalid";
    healing.title = `The stored policy (revision ${invalid.revision}) is invalid and was rejected: ${invalid.error}. ${
      policyHealth.inForce === "paused"
        ? "Healing is paused until a valid policy is stored."
        : "The last valid policy stays in force."
    } Replace it with PUT /policy.`;
    toggle.hidden = true;
  } else if (!policy) {
    healing.className = "pill pill-muted";
    healing.textContent = "healing ?";
    healing.dataset.state = "unknown";
    toggle.hidden = true;
  } else {
    const paused = Boolean(policy.paused);
    healing.className = `pill ${paused ? "tone-warn" : "tone-ok"}`;
    healing.textContent = paused
      ? "healing paused"
      : policy.dryRun
        ? "healing dry-run"
        : "healing active";
    healing.dataset.state = paused ? "paused" : "active";
    healing.title = paused
      ? "Healing is paused fleet-wide: unhealthy containers are not restarted automatically."
      : policy.dryRun
        ? "Dry run: fleetheal decides and records, but never restarts."
        : "Unhealthy opted-in containers are restarted automatically.";
    toggle.hidden = false;
    toggle.textContent = paused ? "Resume healing" : "Pause healing";
    toggle.dataset.action = paused ? "resume" : "pause";
    toggle.className = `btn btn-small ${paused ? "btn-primary" : ""}`;
  }
  document.body.classList.toggle("is-paused", Boolean(policy?.paused));
}

/** Loads the stored policy (none while it is invalid) and shows it. */
export async function loadPolicy() {
  try {
    state.policy = await fetchPolicy();
  } catch {
    state.policy = null;
  }
  renderHeader();
}
