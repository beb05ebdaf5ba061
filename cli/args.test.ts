import { describe, expect, it } from "vitest";
import { formatOptions, parseArgs, UsageError } from "./args.js";

const SPECS = [
  { name: "host", kind: "string", value: "<host>", description: "Only this host" },
  { name: "reason", kind: "string", value: "<text>", description: "Why" },
  { name: "follow", kind: "boolean", short: "f", description: "Keep going" },
  { name: "opted-in", kind: "boolean", description: "Opted in\nsecond line" },
  { name: "limit", kind: "string", short: "n", value: "<n>", description: "Rows" },
] as const;

function usage(argv: string[]): string {
  try {
    parseArgs(argv, SPECS);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error(`${argv.join(" ")} parsed`);
}

describe("parseArgs", () => {
  it("takes values spaced or after =, flags, short aliases and positionals in any order", () => {
    const { options, positionals } = parseArgs(
      ["web-1", "--host", "h1", "-f", "api", "--reason=a b=c", "-n", "5"],
      SPECS,
    );
    expect(options).toEqual({ host: "h1", follow: true, reason: "a b=c", limit: "5" });
    expect(positionals).toEqual(["web-1", "api"]);
  });

  it("reads flags given as =true/=false, and treats everything after -- as positional", () => {
    expect(parseArgs(["--opted-in=false", "--follow=1"], SPECS).options).toEqual({
      "opted-in": false,
      follow: true,
    });
    expect(parseArgs(["--", "--host", "-f"], SPECS).positionals).toEqual(["--host", "-f"]);
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
    expect(parseArgs(["--reason", "-- odd"], SPECS).options.reason).toBe("-- odd");
  });
});

describe("formatOptions", () => {
  it("aligns descriptions, continues multi-line ones under the first, shows short aliases", () => {
    expect(formatOptions(SPECS).split("\n")).toEqual([
      "      --host <host>    Only this host",
      "      --reason <text>  Why",
      "  -f, --follow         Keep going",
      "      --opted-in       Opted in",
      "                       second line",
      "  -n, --limit <n>      Rows",
    ]);
  });
});
