import { spawn } from "node:child_process";
import { constants } from "node:os";

/**
 * The editor `policy edit` opens: $EDITOR, else $VISUAL, else vi, as `kubectl edit` and
 * `crontab -e` pick theirs. It may carry arguments (`code --wait`), so it runs through the shell.
 */
export function editorCommand(env: NodeJS.ProcessEnv): string {
  return [env.EDITOR, env.VISUAL].find((e) => e !== undefined && e.trim() !== "") ?? "vi";
}

/**
 * Runs `editor` on `file` with the terminal, and resolves with its exit code (128 + the signal
 * that ended it). The file is passed as `$1`, never pasted into the command line, so that no
 * path can be read by the shell as code.
 */
export function runEditor(editor: string, file: string, env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn("/bin/sh", ["-c", `${editor} "$1"`, "fleetheal-editor", file], {
      stdio: "inherit",
      env,
    });
    child.once("error", reject);
    child.once("exit", (code, signal) =>
      resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0)),
    );
  });
}
