import { describe, expect, it } from "vitest";
import { parseCommandLine, UsageError } from "./args.js";

const SPECS = {
  host: { type: "string", value: "<host>", description: "Only this host" },
  reason: { type: "string", value: "<text>", description: "Why" },
  follow: { type: "boolean", short: "f", description: "Keep going" },
  "opted-in": { type: "boolean", description: "Opted in\nsecond line" },
  limit: { type: "string", short: "n", value: "<n>", description: "Rows" },
  help: { type: "boolean", short: "h", description: "Help" },
} as const;

function usage(argv: string[]): string {
  try {
    parseCommandLine(argv, SPECS);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error(`${argv.join(" ")} parsed`);
}

describe("parseCommandLine", () => {
  it("takes values spaced or after =, flags, short aliases and positionals in any order", () => {
    const { options, positionals } = parseCommandLine(
      ["web-1", "--host", "h1", "-f", "api", "--reason=a b=c", "-n", "5"],
      SPECS,
    );
    expect(options).toEqual({ host: "h1", follow: true, reason: "a b=c", limit: "5" });
    expect(positionals).toEqual(["web-1", "api"]);
  });

  it("reads flags given as =true/=false, and treats everything after -- as positional", () => {
    expect(parseCommandLine(["--opted-in=false", "--follow=1"], SPECS).options).toEqual({
      "opted-in": false,
      follow: true,
    });
    expect(parseCommandLine(["--", "--host", "-f"], SPECS).positionals).toEqual(["--host", "-f"]);
  });

  it("says exactly what is wrong", () => {
    expect(usage(["--hots", "x"])).toBe("unknown option --hots");
    expect(usage(["-x"])).toBe("unknown option -x");
    expect(usage(["--host"])).toBe("--host needs a value <host>");
    expect(usage(["-n"])).toBe("-n needs a value <n>");
    // A forgotten value is not silently filled with the next option.
    expect(usage(["--reason", "--follow"])).toBe("--reason needs a value <text>");
    expect(usage(["--host="])).toBe("--host needs a non-empty value");
    expect(usage(["--host", "a", "--host", "b"])).toBe("--host is given more than once");
    expect(usage(["--follow=maybe"])).toBe(
      "--follow is a flag: give it alone, or as --follow=true|false",
    );
  });

  it("lets a value start with a dash when it is not an option", () => {
    expect(parseCommandLine(["--reason", "-- odd"], SPECS).options.reason).toBe("-- odd");
  });

  it("reads grouped short flags and a short option's attached value, as node:util parseArgs does", () => {
    expect(parseCommandLine(["-fn5"], SPECS).options).toEqual({ follow: true, limit: "5" });
  });

  it("lets -h or --help win over every other mistake on the line", () => {
    expect(parseCommandLine(["--hots", "-h", "--host"], SPECS).options.help).toBe(true);
    expect(usage(["--hots", "--help=false"])).toBe("unknown option --hots");
  });
});
