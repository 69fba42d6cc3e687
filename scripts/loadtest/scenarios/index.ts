import type { Runtime } from "../runtime.js";
import type { ScenarioRun } from "./scenario.js";
import { ChannelScenario } from "./channels.js";
import { ConnectStorm } from "./connect-storm.js";
import { ConnectionsRamp } from "./connections.js";
import { PresenceChurn } from "./presence-churn.js";

export type { ScenarioFinal, ScenarioRun } from "./scenario.js";

export function createScenario(rt: Runtime): ScenarioRun {
  switch (rt.options.scenario) {
    case "fan-out":
    case "chat":
    case "recovery-storm":
    case "persistence-throughput":
      return new ChannelScenario(rt);
    case "connect-storm":
      return new ConnectStorm(rt);
    case "presence-churn":
      return new PresenceChurn(rt);
    case "connections":
      return new ConnectionsRamp(rt);
  }
}
