/* homecare-gw replay --config FILE [--until TIME] LOG.jsonl: the rules over a recorded home log,
 * on the log's own clock, printing every alert raise and clear as one JSON object per line (the
 * object the daemon publishes, without its seq). The command-line tool; the line parser it uses is
 * gateway/replay.c. */
#pragma once

/* argv[0] is "replay". Prints to stdout and stderr. Returns the exit status: 0, or 2 for bad
 * arguments, an unreadable configuration or log (one line on stderr). Bad log lines are skipped
 * and counted on stderr. */
int cli_replay(int argc, char *argv[]);
