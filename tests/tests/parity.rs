//! Docker parity, measured against Docker itself: every row of `SCENARIOS`
//! runs through `docker` on a private engine (Debian's docker.io, see
//! `berth_harness::dockerd`) and through the berth tool standing for it,
//! both pulling the same fixture images from the same local registry; the
//! named parts (stdout, stderr, exit code) must agree once normalised.
//! Every difference berth means to have is listed once in `INTENDED` with
//! its reason and checked to still be there. If the engine cannot start,
//! the suite says so loudly and skips.

use berth_harness::dockerd::{Dockerd, TestBridge};
use berth_harness::fixture::Format;
use berth_harness::parity::{
    ALL, CODE, ERR, Intended, OUT, Outcome, Scenario, Vars, differing, normalise, run_berth,
    run_docker,
};
use berth_harness::{Fixture, Registry};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

const OC: u8 = OUT | CODE;

/// The bridge of the suite's Docker engine.
const PARITY_BRIDGE: &str = "berthpx0";

const fn s(
    name: &'static str,
    setup: &'static [&'static str],
    cmd: &'static str,
    compare: u8,
) -> Scenario {
    Scenario {
        name,
        setup,
        cmd,
        compare,
    }
}

/// A container that runs until removed (PID 1 ignores SIGTERM, as busybox
/// sleep does under Docker too).
const SLEEPER: &str = "run -d --name $N $B sleep 300";
/// A container that stops on SIGTERM at once.
const TRAPPER: &str =
    "run -d --name $N $B sh -c 'trap \"exit 143\" TERM; while :; do sleep 0.1; done'";
/// A sleeper with a memory limit, and the limits ctr-update changes.
const LIMITED: &str = "run -d --name $N -m 64m $B sleep 300";
const UPDATED: &str = "update -m 32m --cpus 0.5 --pids-limit 20 $N";
const EXITED: &str = "run --name $N $B sh -c 'echo out; echo err >&2; exit 3'";

#[rustfmt::skip]
const SCENARIOS: &[Scenario] = &[
    // run: output, exit codes, the process's view
    s("run-echo", &[], "run --rm $B echo hello world", ALL),
    s("run-exit-code", &[], "run --rm $B sh -c 'exit 3'", ALL),
    s("run-exit-signal", &[], "run --rm $B sh -c 'kill -9 $$'", ALL),
    s("run-missing-command", &[], "run --rm $B nosuchcommand", CODE),
    s("run-not-executable", &[], "run --rm $B /etc/passwd", CODE),
    s("run-stderr", &[], "run --rm $B sh -c 'echo to-err >&2'", ALL),
    s("run-env", &[], "run --rm -e FOO=bar $B sh -c 'echo $FOO'", ALL),
    s("run-env-list", &[], "run --rm -e A=1 -e B=2 $B sh -c 'env | sort'", ALL),
    s("run-env-order", &[], "run --rm -e A=1 -e B=2 $B env", ALL),
    s("run-env-unset", &[], "run --rm -e NOPE_UNSET_PARITY $B sh -c 'echo ${NOPE_UNSET_PARITY-unset}'", ALL),
    s("run-workdir", &[], "run --rm -w /tmp $B pwd", ALL),
    s("run-workdir-new", &[], "run --rm -w /new/dir $B pwd", ALL),
    s("run-user-name", &[], "run --rm -u nobody $B id", ALL),
    s("run-user-root", &[], "run --rm $B id", ALL),
    s("run-user-numeric", &[], "run --rm -u 1000 $B id", ALL),
    s("run-user-uid-gid", &[], "run --rm -u 1000:1000 $B id", ALL),
    s("run-user-unknown", &[], "run --rm -u nosuchuser $B id", CODE),
    s("run-hostname", &[], "run --rm -h parityhost $B hostname", ALL),
    s("run-hostname-default", &[], "run --rm $B sh -c 'hostname | wc -c'", ALL),
    s("run-entrypoint", &[], "run --rm --entrypoint echo $B a b", ALL),
    s("run-entrypoint-empty-cmd", &[], "run --rm --entrypoint pwd $B", ALL),
    s("run-stdin", &[], "run --rm -i $B cat <<< hello\n", ALL),
    s("run-no-stdin", &[], "run --rm $B cat <<< hello\n", ALL),
    s("run-pid-one", &[], "run --rm $B sh -c 'echo $$'", ALL),
    s("run-read-only", &[], "run --rm --read-only $B touch /x", ALL),
    s("run-read-only-tmpfs", &[], "run --rm --read-only --tmpfs /scratch $B touch /scratch/x", ALL),
    s("run-caps-default", &[], "run --rm $B grep CapEff /proc/self/status", ALL),
    s("run-caps-drop-all", &[], "run --rm --cap-drop ALL $B grep CapEff /proc/self/status", ALL),
    s("run-caps-add", &[], "run --rm --cap-add SYS_ADMIN $B grep CapEff /proc/self/status", ALL),
    s("run-memory", &[], "run --rm -m 64m $B cat /sys/fs/cgroup/memory/memory.limit_in_bytes", ALL),
    s("run-pids-limit", &[], "run --rm --pids-limit 50 $B cat /sys/fs/cgroup/pids/pids.max", ALL),
    s("run-name-conflict", &["run --name $N $B true"], "run --name $N $B true", CODE),
    s("run-name-invalid", &[], "run --name '-bad' $B true", CODE),
    s("run-missing-image", &[], "run --rm $R/parity/missing:latest true", CODE),
    s("run-detach", &[], "run -d --name $N $B sleep 300", OC),
    s("run-rm-removes", &["run --rm --name $N $B true"], "ps -a -f name=$N --format {{.Names}}", ALL),
    s("run-keeps-exited", &["run --name $N $B true"], "ps -a -f name=$N --format {{.Names}}", ALL),
    s("run-other-image", &[], "run --rm $O cat /etc/fixture", ALL),
    s("run-proc-masked", &[], "run --rm $B cat /proc/kcore", CODE),
    s("run-sys-ro", &[], "run --rm $B touch /sys/x", CODE),
    // ps: tables, filters, formats
    s("ps-empty", &[], "ps -f name=$N", ALL),
    s("ps-running", &[SLEEPER], "ps -f name=$N", ALL),
    s("ps-all-exited", &[EXITED], "ps -a -f name=$N", ALL),
    s("ps-hides-exited", &[EXITED], "ps -f name=$N", ALL),
    s("ps-quiet", &[EXITED], "ps -aq -f name=$N", ALL),
    s("ps-no-trunc", &[EXITED], "ps -a --no-trunc -f name=$N", ALL),
    s("ps-format-names", &[EXITED], "ps -a -f name=$N --format {{.Names}}", ALL),
    s("ps-format-status", &[EXITED], "ps -a -f name=$N --format {{.Status}}", ALL),
    s("ps-format-table", &[EXITED], "ps -a -f name=$N --format 'table {{.Names}}\t{{.Image}}'", ALL),
    s("ps-format-command", &[EXITED], "ps -a -f name=$N --format {{.Command}}", ALL),
    s("ps-format-command-full", &[EXITED], "ps -a --no-trunc -f name=$N --format {{.Command}}", ALL),
    s("ps-command-spaces", &["run --name $N $B echo 'a b' c"], "ps -a --no-trunc -f name=$N --format {{.Command}}", ALL),
    s("ps-format-json-names", &[EXITED], "ps -a -f name=$N --format '{{json .Names}}'", ALL),
    s("ps-format-missing-field", &[EXITED], "ps -a -f name=$N --format '{{.Nope}}'", CODE),
    s("ps-filter-exited", &[EXITED], "ps -a -f name=$N -f exited=3 --format {{.Names}}", ALL),
    s("ps-filter-exited-other", &[EXITED], "ps -a -f name=$N -f exited=0 --format {{.Names}}", ALL),
    s("ps-filter-status", &[EXITED, "run -d --name $N-r $B sleep 300"], "ps -a -f name=$N -f status=running --format {{.Names}}", ALL),
    s("ps-filter-status-exited", &[EXITED, "run -d --name $N-r $B sleep 300"], "ps -a -f name=$N -f status=exited --format {{.Names}}", ALL),
    s("ps-filter-ancestor", &[EXITED, "run --name $N-o $O true"], "ps -a -f name=$N -f ancestor=$O --format {{.Names}}", ALL),
    s("ps-filter-ancestor-child", &["build -t $N - <<< FROM $B\nLABEL parity=$N", "run --name $N-c $N true", "run --name $N-o $O true"], "ps -a -f name=$N -f ancestor=$B --format {{.Names}}", ALL),
    s("ps-filter-before", &["run --name $N-a $B true", "run --name $N-b $B true"], "ps -a -f name=$N -f before=$N-b --format {{.Names}}", ALL),
    s("ps-filter-since", &["run --name $N-a $B true", "run --name $N-b $B true"], "ps -a -f name=$N -f since=$N-a --format {{.Names}}", ALL),
    s("ps-filter-label", &["run --name $N-a -l parity=yes $B true", "run --name $N-b $B true"], "ps -a -f name=$N -f label=parity=yes --format {{.Names}}", ALL),
    s("ps-filter-label-key", &["run --name $N-a -l parity=yes $B true", "run --name $N-b $B true"], "ps -a -f name=$N -f label=parity --format {{.Names}}", ALL),
    s("ps-filter-bad", &[], "ps -f bogus=1", CODE),
    s("ps-last", &["run --name $N-a $B true", "run --name $N-b $B true"], "ps -a -l -f name=$N --format {{.Names}}", ALL),
    s("ps-order", &["run --name $N-a $B true", "run --name $N-b $B true", "run --name $N-c $B true"], "ps -a -f name=$N --format {{.Names}}", ALL),
    // stop, start, restart, kill, rm, wait, rename, pause
    s("stop-running", &[TRAPPER], "stop $N", ALL),
    s("stop-status", &[TRAPPER, "stop $N"], "ps -a -f name=$N --format {{.Status}}", ALL),
    s("stop-timeout-kills", &[SLEEPER, "stop -t 0 $N"], "ps -a -f name=$N --format {{.Status}}", ALL),
    s("stop-exited", &[EXITED], "stop $N", ALL),
    s("stop-missing", &[], "stop nosuch$N", ALL),
    s("start-exited", &[EXITED], "start $N", ALL),
    s("start-attach", &[EXITED], "start -a $N", ALL),
    s("start-running", &[SLEEPER], "start $N", ALL),
    s("start-missing", &[], "start nosuch$N", CODE),
    s("start-status", &["run --name $N $B sh -c 'test -f /once && exec sleep 300; touch /once'", "start $N"], "ps -f name=$N --format {{.Names}}", ALL),
    s("restart-running", &[TRAPPER], "restart $N", ALL),
    s("restart-exited", &[EXITED], "restart $N", ALL),
    s("restart-status", &[TRAPPER, "restart $N"], "ps -f name=$N --format {{.Status}}", ALL),
    s("restart-missing", &[], "restart nosuch$N", ALL),
    s("kill-running", &[SLEEPER], "kill $N", ALL),
    s("kill-status", &[SLEEPER, "kill $N", "wait $N"], "ps -a -f name=$N --format {{.Status}}", ALL),
    s("kill-signal", &[TRAPPER, "kill -s TERM $N", "wait $N"], "ps -a -f name=$N --format {{.Status}}", ALL),
    s("kill-exited", &[EXITED], "kill $N", CODE),
    s("kill-bad-signal", &[SLEEPER], "kill -s NOPE $N", CODE),
    s("kill-missing", &[], "kill nosuch$N", CODE),
    s("rm-exited", &[EXITED], "rm $N", ALL),
    s("rm-gone", &[EXITED, "rm $N"], "ps -a -f name=$N -q", ALL),
    s("rm-running", &[SLEEPER], "rm $N", CODE),
    s("rm-force", &[SLEEPER], "rm -f $N", ALL),
    s("rm-missing", &[], "rm nosuch$N", ALL),
    s("rm-force-missing", &[], "rm -f nosuch$N", CODE),
    s("wait-exit-code", &["run -d --name $N $B sh -c 'exit 7'"], "wait $N", ALL),
    s("wait-missing", &[], "wait nosuch$N", CODE),
    s("rename", &[EXITED], "rename $N $N-new", ALL),
    s("rename-result", &[EXITED, "rename $N $N-new"], "ps -a -f name=$N --format {{.Names}}", ALL),
    s("rename-taken", &[EXITED, "run --name $N-b $B true"], "rename $N $N-b", CODE),
    s("pause", &[SLEEPER], "pause $N", ALL),
    s("pause-status", &[SLEEPER, "pause $N"], "ps -f name=$N --format {{.Status}}", ALL),
    s("unpause", &[SLEEPER, "pause $N"], "unpause $N", ALL),
    s("pause-exited", &[EXITED], "pause $N", CODE),
    // create, then start
    s("create", &[], "create --name $N $B true", ALL),
    s("create-status", &["create --name $N $B true"], "ps -a -f name=$N --format {{.Status}}", ALL),
    s("create-inspect", &["create --name $N $B true"], "inspect -f '{{.State.Status}} {{.State.Running}} {{.State.Pid}} {{.State.ExitCode}}' $N", ALL),
    s("create-start-attached", &["create --name $N $B sh -c 'echo hi; exit 3'"], "start -a $N", ALL),
    s("create-started-status", &["create --name $N $B true", "start -a $N"], "ps -a -f name=$N --format {{.Status}}", ALL),
    s("create-name-conflict", &["create --name $N $B true"], "create --name $N $B true", CODE),
    s("create-detach-refused", &[], "create -d $B true", CODE),
    // stats: what does not change from run to run
    s("stats-running", &[SLEEPER], "stats --no-stream --format '{{.Name}} {{.PIDs}}' $N", ALL),
    s("stats-exited", &[EXITED], "stats --no-stream --format '{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.MemPerc}} {{.NetIO}} {{.PIDs}}' $N", ALL),
    s("stats-table", &[EXITED], "stats --no-stream --format 'table {{.Name}}\t{{.PIDs}}' $N", ALL),
    s("stats-missing", &[], "stats --no-stream nosuch$N", ALL),
    // update: limits changed on a running container (started with -m:
    // Docker 20.10 on cgroup v1 refuses a first memory limit without swap)
    s("update-limits", &[LIMITED], "update -m 32m --cpus 0.5 --pids-limit 20 $N", ALL),
    s("update-inspect", &[LIMITED, UPDATED], "inspect -f '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}' $N", ALL),
    s("update-cgroups", &[LIMITED, UPDATED], "exec $N cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/pids/pids.max", ALL),
    s("update-unlimited-pids", &[LIMITED, UPDATED, "update --pids-limit -1 $N"], "exec $N cat /sys/fs/cgroup/pids/pids.max", ALL),
    s("update-missing", &[], "update -m 32m nosuch$N", ALL),
    s("update-no-flags", &[SLEEPER], "update $N", CODE),
    // exec
    s("exec-echo", &[SLEEPER], "exec $N echo hi", ALL),
    s("exec-exit-code", &[SLEEPER], "exec $N sh -c 'exit 5'", ALL),
    s("exec-missing-command", &[SLEEPER], "exec $N nosuchcommand", CODE),
    s("exec-not-running", &[EXITED], "exec $N true", CODE),
    s("exec-missing-container", &[], "exec nosuch$N true", ALL),
    s("exec-workdir", &[SLEEPER], "exec -w /tmp $N pwd", ALL),
    s("exec-workdir-missing", &[SLEEPER], "exec -w /missing $N pwd", CODE),
    s("exec-user", &[SLEEPER], "exec -u nobody $N id", ALL),
    s("exec-env", &[SLEEPER], "exec -e A=1 $N sh -c 'echo $A'", ALL),
    s("exec-stdin", &[SLEEPER], "exec -i $N cat <<< piped\n", ALL),
    s("exec-sees-container", &["run -d --name $N $B sh -c 'echo x > /tmp/m; sleep 300'", "exec $N sh -c 'while ! test -f /tmp/m; do sleep 0.05; done'"], "exec $N cat /tmp/m", ALL),
    // logs
    s("logs", &[EXITED], "logs $N", ALL),
    s("logs-tail", &["run --name $N $B sh -c 'echo 1; echo 2; echo 3'"], "logs --tail 2 $N", ALL),
    s("logs-tail-zero", &[EXITED], "logs --tail 0 $N", ALL),
    s("logs-follow-exited", &[EXITED], "logs -f $N", ALL),
    s("logs-timestamps", &["run --name $N $B echo stamped"], "logs -t $N", ALL),
    s("logs-missing", &[], "logs nosuch$N", ALL),
    // inspect -f
    s("inspect-status", &[EXITED], "inspect -f {{.State.Status}} $N", ALL),
    s("inspect-exit-code", &[EXITED], "inspect -f {{.State.ExitCode}} $N", ALL),
    s("inspect-running", &[SLEEPER], "inspect -f {{.State.Running}} $N", ALL),
    s("inspect-name", &[EXITED], "inspect -f {{.Name}} $N", ALL),
    s("inspect-image-name", &[EXITED], "inspect -f {{.Config.Image}} $N", ALL),
    s("inspect-cmd", &[EXITED], "inspect -f '{{json .Config.Cmd}}' $N", ALL),
    s("inspect-path-args", &[EXITED], "inspect -f '{{.Path}} {{json .Args}}' $N", ALL),
    s("inspect-entrypoint", &[EXITED], "inspect -f '{{json .Config.Entrypoint}}' $N", ALL),
    s("inspect-env", &[EXITED], "inspect -f '{{json .Config.Env}}' $N", ALL),
    s("inspect-labels", &["run --name $N -l a=b -l c=d $B true"], "inspect -f '{{json .Config.Labels}}' $N", ALL),
    s("inspect-workdir-user", &["run --name $N -w /tmp -u nobody $B true"], "inspect -f '{{.Config.WorkingDir}}|{{.Config.User}}' $N", ALL),
    s("inspect-restart-policy", &[EXITED], "inspect -f '{{.HostConfig.RestartPolicy.Name}}|{{.HostConfig.RestartPolicy.MaximumRetryCount}}' $N", ALL),
    s("inspect-log-config", &[EXITED], "inspect -f '{{.HostConfig.LogConfig.Type}}' $N", ALL),
    s("inspect-healthcheck", &[EXITED], "inspect -f '{{json .Config.Healthcheck}}' $N", ALL),
    s("inspect-exposed-ports", &[EXITED], "inspect -f '{{json .Config.ExposedPorts}}' $N", ALL),
    s("inspect-auto-remove", &[SLEEPER], "inspect -f '{{.HostConfig.AutoRemove}}' $N", ALL),
    s("inspect-read-only", &["run --name $N --read-only $B true"], "inspect -f '{{.HostConfig.ReadonlyRootfs}}' $N", ALL),
    s("inspect-memory", &["run --name $N -m 64m $B true"], "inspect -f '{{.HostConfig.Memory}}' $N", ALL),
    s("inspect-hostname", &["run --name $N -h named $B true"], "inspect -f '{{.Config.Hostname}}' $N", ALL),
    s("inspect-graph-driver", &[EXITED], "inspect -f '{{.GraphDriver.Name}}' $N", ALL),
    s("inspect-missing-field", &[EXITED], "inspect -f '{{.State.Nope}}' $N", CODE),
    s("inspect-missing", &[], "inspect nosuch$N", CODE),
    s("inspect-container-missing", &[], "container inspect nosuch$N", ALL),
    s("image-inspect-id", &[], "image inspect -f {{.Id}} $B", ALL),
    s("image-inspect-tags", &["build -t $N:a - <<< FROM $B\nLABEL parity=$N", "tag $N:a $N:b", "tag $N:b $N:c"], "image inspect -f '{{json .RepoTags}}' $N:a", ALL),
    s("image-inspect-tags-many", &["tag $B $N:one", "tag $B $N:two"], "image inspect -f '{{len .RepoTags}}' $N:one", ALL),
    s("image-inspect-digests", &[], "image inspect -f '{{json .RepoDigests}}' $B", ALL),
    s("image-inspect-cmd", &[], "image inspect -f '{{json .Config.Cmd}}' $B", ALL),
    s("image-inspect-platform", &[], "image inspect -f '{{.Os}}/{{.Architecture}}' $B", ALL),
    s("image-inspect-labels", &[], "image inspect -f '{{json .Config.Labels}}' $O", ALL),
    s("image-inspect-layers", &[], "image inspect -f '{{json .RootFS.Layers}}' $B", ALL),
    s("image-inspect-missing", &[], "image inspect nosuch$N", ALL),
    // images, tag, rmi
    s("images-repository", &[], "images $R/parity/busybox", ALL),
    s("images-quiet", &[], "images -q $R/parity/busybox", ALL),
    s("images-format", &[], "images --format '{{.Repository}}:{{.Tag}} {{.ID}}' $R/parity/busybox", ALL),
    s("images-no-trunc", &[], "images --no-trunc $R/parity/busybox", ALL),
    s("images-digests", &[], "images --digests $R/parity/busybox", ALL),
    s("images-none-match", &[], "images nosuch$N", ALL),
    s("images-filter-reference", &["tag $B $N:a", "build -t $N:b - <<< FROM $B\nLABEL parity=$N"], "images -f reference=$N --format '{{.Tag}} {{.ID}}'", ALL),
    s("images-filter-label", &["build -t $N - <<< FROM $B\nLABEL parity=$N"], "images -f label=parity=$N --format {{.Repository}}", ALL),
    s("tag", &[], "tag $B $N:v1", ALL),
    s("tag-listed", &["tag $B $N:v1"], "images $N", ALL),
    s("tag-missing-source", &[], "tag nosuch$N $N:v1", ALL),
    s("tag-invalid", &[], "tag $B $N:bad:tag", CODE),
    s("rmi-tag", &["tag $B $N:v1"], "rmi $N:v1", ALL),
    s("rmi-listed", &["tag $B $N:v1", "rmi $N:v1"], "images $N", ALL),
    s("rmi-missing", &[], "rmi nosuch$N", ALL),
    s("rmi-in-use", &["build -t $N - <<< FROM $B\nLABEL parity=$N", "run --name $N $N true"], "rmi $N", CODE),
    s("rmi-built", &["build -t $N - <<< FROM $B\nLABEL parity=$N"], "rmi $N", CODE),
    s("rmi-by-id-many-tags", &["build -t $N:a - <<< FROM $B\nLABEL parity=$N", "tag $N:a $N:b"], "rmi $N:a", ALL),
    // pull
    s("pull-up-to-date", &[], "pull $B", CODE),
    s("pull-output", &[], "pull $B", OUT),
    s("pull-by-digest-output", &[], "pull $R/parity/busybox@$D", OUT),
    s("pull-missing-tag", &[], "pull $R/parity/busybox:nosuch", CODE),
    s("pull-bad-reference", &[], "pull UPPER/case", CODE),
    s("pull-by-digest", &[], "pull $R/parity/busybox@$D", CODE),
    s("pull-by-digest-no-none", &["pull $R/parity/busybox@$D"], "images $R/parity/busybox", ALL),
    s("pull-third", &["pull $R/parity/third:latest"], "images --format '{{.Repository}} {{.Tag}} {{.ID}}' $R/parity/third", ALL),
    // build: the images it makes, run
    s("build-run", &["build -t $N - <<< FROM $B\nRUN echo built > /b"], "run --rm $N cat /b", ALL),
    s("build-env", &["build -t $N - <<< FROM $B\nENV A=1 B=two"], "run --rm $N sh -c 'echo $A $B'", ALL),
    s("build-workdir", &["build -t $N - <<< FROM $B\nWORKDIR /srv/app"], "run --rm $N pwd", ALL),
    s("build-user", &["build -t $N - <<< FROM $B\nUSER nobody"], "run --rm $N id -u", ALL),
    s("build-cmd", &["build -t $N - <<< FROM $B\nCMD [\"echo\", \"from cmd\"]"], "run --rm $N", ALL),
    s("build-entrypoint", &["build -t $N - <<< FROM $B\nENTRYPOINT [\"echo\", \"ep\"]"], "run --rm $N arg", ALL),
    s("build-arg", &["build --build-arg A=5 -t $N - <<< FROM $B\nARG A\nRUN echo $A > /a"], "run --rm $N cat /a", ALL),
    s("build-labels", &["build -t $N - <<< FROM $B\nLABEL one=1 two=2"], "image inspect -f '{{json .Config.Labels}}' $N", ALL),
    s("build-cmd-inspect", &["build -t $N - <<< FROM $B\nCMD echo hi"], "image inspect -f '{{json .Config.Cmd}}' $N", ALL),
    s("build-fails", &[], "build -t $N - <<< FROM $B\nRUN exit 3", CODE),
    s("build-bad-instruction", &[], "build -t $N - <<< FROM $B\nNOPE x", CODE),
    s("build-missing-base", &[], "build -t $N - <<< FROM $R/parity/missing:latest", CODE),
    s("build-listed", &["build -t $N - <<< FROM $B\nLABEL parity=$N"], "images --format '{{.Repository}}:{{.Tag}}' $N", ALL),
    // prune (containers and images scoped by label; volumes, healthchecks: later rows)
    s("container-prune-label", &["run --name $N -l p=$N $B true"], "container prune -f --filter label=p=$N", CODE),
    s("container-prune-gone", &["run --name $N -l p=$N $B true", "container prune -f --filter label=p=$N"], "ps -a -f name=$N -q", ALL),
    s("container-prune-keeps-running", &["run -d --name $N -l p=$N $B sleep 300", "container prune -f --filter label=p=$N"], "ps -a -f name=$N --format {{.Names}}", ALL),
    s("container-prune-asks-no", &["run --name $N -l p=$N $B true"], "container prune --filter label=p=$N <<< n\n", ALL),
    s("container-prune-asked-kept", &["run --name $N -l p=$N $B true", "container prune --filter label=p=$N <<< n\n"], "ps -a -f name=$N --format {{.Names}}", ALL),
    s("image-prune-asks-no", &[], "image prune --filter label=p=$N <<< n\n", ALL),
    s("image-prune-asked-yes", &["build -t $N - <<< FROM $B\nLABEL p=$N v=1", "build -t $N - <<< FROM $B\nLABEL p=$N v=2", "image prune --filter label=p=$N <<< y\n"], "images -f label=p=$N -f dangling=true -q", ALL),
    s("image-prune-asked-other", &["build -t $N - <<< FROM $B\nLABEL p=$N v=1", "build -t $N - <<< FROM $B\nLABEL p=$N v=2", "image prune --filter label=p=$N <<< yes\n"], "images -f label=p=$N -f dangling=true --format {{.Tag}}", ALL),
    s("image-prune-label", &["build -t $N - <<< FROM $B\nLABEL p=$N v=1", "build -t $N - <<< FROM $B\nLABEL p=$N v=2"], "image prune -f --filter label=p=$N", CODE),
    s("image-prune-label-gone", &["build -t $N - <<< FROM $B\nLABEL p=$N v=1", "build -t $N - <<< FROM $B\nLABEL p=$N v=2", "image prune -f --filter label=p=$N"], "images -f label=p=$N --format {{.Tag}}", ALL),
    // health checks and restart policies
    s("run-restart-policy", &["run -d --name $N --restart on-failure:3 $B sleep 300"], "inspect -f '{{.HostConfig.RestartPolicy.Name}}|{{.HostConfig.RestartPolicy.MaximumRetryCount}}' $N", ALL),
    s("run-restart-policy-json", &["run -d --name $N --restart always $B sleep 300"], "inspect -f '{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}' $N", ALL),
    s("inspect-json-keeps-field-order", &["run -d --name $N --restart on-failure:2 $B sleep 300"], "inspect -f '{{json .HostConfig.RestartPolicy}}' $N", ALL),
    s("inspect-json-state-order", &[EXITED], "inspect -f '{{json .State.Status}} {{json .State.Running}} {{json .State.ExitCode}}' $N", ALL),
    s("run-restart-unless-stopped", &["run -d --name $N --restart unless-stopped $B sleep 300"], "inspect -f '{{.HostConfig.RestartPolicy.Name}} {{.RestartCount}} {{.State.Restarting}}' $N", ALL),
    s("run-restart-bad", &[], "run --restart sometimes $B true", CODE),
    s("run-restart-bad-count", &[], "run --restart on-failure:x $B true", CODE),
    s("run-restart-count-always", &[], "run --restart always:3 $B true", CODE),
    s("run-restart-rm", &[], "run --rm --restart always $B true", CODE),
    s("run-restart-rm-none", &["run --rm --restart always --name $N $B true"], "ps -a -f name=$N -q", ALL),
    s("run-health-bad-duration", &[], "run --health-interval soon $B true", CODE),
    s("run-no-healthcheck-conflict", &[], "run --no-healthcheck --health-cmd true $B true", CODE),
    s("inspect-healthcheck-flags", &["run -d --name $N --health-cmd 'exit 0' --health-interval 1m30s --health-timeout 5s --health-retries 2 $B sleep 300"], "inspect -f '{{json .Config.Healthcheck.Test}} {{json .Config.Healthcheck.Interval}} {{json .Config.Healthcheck.Timeout}} {{.Config.Healthcheck.Retries}}' $N", ALL),
    s("inspect-no-healthcheck", &["run --name $N --no-healthcheck $B true"], "inspect -f '{{json .Config.Healthcheck}}' $N", ALL),
    s("inspect-health-starting", &["run -d --name $N --health-cmd true --health-interval 1h $B sleep 300"], "inspect -f '{{.State.Health.Status}} {{.State.Health.FailingStreak}} {{len .State.Health.Log}}' $N", ALL),
    s("ps-health-starting", &["run -d --name $N --health-cmd true --health-interval 1h $B sleep 300"], "ps -f name=$N --format {{.Status}}", ALL),
    s("ps-filter-health-starting", &["run -d --name $N-h --health-cmd true --health-interval 1h $B sleep 300", "run -d --name $N-p $B sleep 300"], "ps -f name=$N -f health=starting --format {{.Names}}", ALL),
    s("ps-filter-health-none", &["run -d --name $N-h --health-cmd true --health-interval 1h $B sleep 300", "run -d --name $N-p $B sleep 300"], "ps -f name=$N -f health=none --format {{.Names}}", ALL),
    s("build-healthcheck", &["build -t $N - <<< FROM $B\nHEALTHCHECK --interval=1h --retries=2 CMD [\"true\"]"], "image inspect -f '{{json .Config.Healthcheck.Test}} {{json .Config.Healthcheck.Interval}} {{.Config.Healthcheck.Retries}}' $N", ALL),
    s("run-image-healthcheck", &["build -t $N - <<< FROM $B\nHEALTHCHECK --interval=1h CMD true", "run -d --name $N $N sleep 300"], "inspect -f '{{json .Config.Healthcheck.Test}} {{json .Config.Healthcheck.Interval}} {{.State.Health.Status}}' $N", ALL),
    s("run-health-over-image", &["build -t $N - <<< FROM $B\nHEALTHCHECK --interval=1h --retries=4 CMD true", "run -d --name $N --health-timeout 7s $N sleep 300"], "inspect -f '{{json .Config.Healthcheck.Test}} {{json .Config.Healthcheck.Interval}} {{json .Config.Healthcheck.Timeout}} {{.Config.Healthcheck.Retries}}' $N", ALL),
    // networks: ports, modes, user networks, connect and disconnect
    s("port-none", &[SLEEPER], "port $N", ALL),
    s("port-unpublished", &[SLEEPER], "port $N 81", ALL),
    s("port-published", &["run -d --name $N -p 80 $B sleep 300"], "port $N 80", CODE),
    s("port-missing", &[], "port nosuch$N", ALL),
    s("inspect-network-mode", &["run --name $N --network bridge $B true"], "inspect -f '{{.HostConfig.NetworkMode}}' $N", ALL),
    s("inspect-network-mode-default", &[EXITED], "inspect -f '{{.HostConfig.NetworkMode}}' $N", ALL),
    s("inspect-network-mode-none", &["run --name $N --network none $B true"], "inspect -f '{{.HostConfig.NetworkMode}}' $N", ALL),
    s("inspect-network-mode-host", &["run --name $N --network host $B true"], "inspect -f '{{.HostConfig.NetworkMode}}' $N", ALL),
    s("inspect-network-mode-user", &["network create $N", "run --name $N --network $N $B true"], "inspect -f '{{.HostConfig.NetworkMode}}' $N", ALL),
    s("inspect-network-mode-container", &[SLEEPER, "run -d --name $N-j --network container:$N $B sleep 300"], "inspect -f '{{.HostConfig.NetworkMode}}' $N-j", ALL),
    s("inspect-networks-container", &[SLEEPER, "run -d --name $N-j --network container:$N $B sleep 300"], "inspect -f '{{json .NetworkSettings.Networks}}' $N-j", ALL),
    s("run-network-none-publish", &[], "run --rm -p 80 --network none $B echo ok", ALL),
    s("run-network-none-lo", &[], "run --rm --network none $B sh -c 'ls /sys/class/net'", ALL),
    s("run-network-missing", &[], "run --rm --network nosuch$N $B true", CODE),
    s("run-ip-default-bridge", &[], "run --rm --ip 10.197.3.99 $B true", CODE),
    s("run-network-container-hostname", &[SLEEPER], "run --rm --network container:$N $B hostname", ALL),
    s("run-network-container-publish", &[SLEEPER], "run --rm --network container:$N -p 80 $B true", CODE),
    s("run-network-container-hostname-flag", &[SLEEPER], "run --rm --network container:$N -h x $B true", CODE),
    s("run-network-container-dns", &[SLEEPER], "run --rm --network container:$N --dns 10.0.0.53 $B true", CODE),
    s("run-network-container-add-host", &[SLEEPER], "run --rm --network container:$N --add-host a:10.0.0.1 $B true", CODE),
    s("run-network-container-stopped", &[EXITED], "run --rm --network container:$N $B true", CODE),
    s("run-network-container-missing", &[], "run --rm --network container:nosuch$N $B true", CODE),
    s("network-create-inspect", &["network create $N"], "network inspect -f '{{.Name}} {{.Driver}} {{.Internal}} {{.Scope}}' $N", ALL),
    s("network-create-internal", &["network create --internal $N"], "network inspect -f '{{.Internal}}' $N", ALL),
    s("network-create-labels", &["network create --label a=b $N"], "network inspect -f '{{json .Labels}}' $N", ALL),
    s("network-create-taken", &["network create $N"], "network create $N", CODE),
    s("network-ls-created", &["network create $N"], "network ls -q -f name=$N", CODE),
    s("network-ls-format", &["network create $N"], "network ls --format '{{.Name}} {{.Driver}} {{.Scope}}' -f name=$N", ALL),
    s("network-inspect-missing", &[], "network inspect nosuch$N", CODE),
    s("network-rm", &["network create $N"], "network rm $N", ALL),
    s("network-rm-missing", &[], "network rm nosuch$N", CODE),
    s("network-rm-predefined", &[], "network rm bridge", CODE),
    s("network-rm-in-use", &["network create $N", "run -d --name $N --network $N $B sleep 300"], "network rm $N", CODE),
    s("network-connect", &["network create $N", SLEEPER], "network connect $N $N", ALL),
    s("network-connect-count", &["network create $N", SLEEPER, "network connect $N $N"], "inspect -f '{{len .NetworkSettings.Networks}}' $N", ALL),
    s("network-connect-interface", &["network create $N", SLEEPER, "network connect $N $N"], "exec $N sh -c 'ls /sys/class/net'", ALL),
    s("network-connect-twice", &["network create $N", SLEEPER, "network connect $N $N"], "network connect $N $N", ALL),
    s("network-connect-stopped", &["network create $N", EXITED, "network connect $N $N"], "inspect -f '{{len .NetworkSettings.Networks}}' $N", ALL),
    s("network-connect-stopped-twice", &["network create $N", EXITED, "network connect $N $N"], "network connect $N $N", ALL),
    s("network-connect-missing-network", &[SLEEPER], "network connect nosuch$N $N", ALL),
    s("network-connect-missing-container", &["network create $N"], "network connect $N nosuch$N", ALL),
    s("network-connect-none", &["network create $N", "run -d --name $N --network none $B sleep 300"], "network connect $N $N", ALL),
    s("network-connect-host", &["network create $N", "run -d --name $N --network host $B sleep 300"], "network connect $N $N", ALL),
    s("network-connect-to-host", &[SLEEPER], "network connect host $N", ALL),
    s("network-connect-container-mode", &["network create $N", SLEEPER, "run -d --name $N-j --network container:$N $B sleep 300"], "network connect $N $N-j", ALL),
    s("network-connect-ip-default-bridge", &[SLEEPER], "network connect --ip 10.197.3.77 bridge $N", ALL),
    s("network-connect-alias-default-bridge", &[SLEEPER], "network connect --alias x bridge $N", ALL),
    s("network-disconnect", &["network create $N", SLEEPER, "network connect $N $N"], "network disconnect $N $N", ALL),
    s("network-disconnect-gone", &["network create $N", SLEEPER, "network connect $N $N", "network disconnect $N $N"], "exec $N sh -c 'ls /sys/class/net'", ALL),
    s("network-disconnect-not-connected", &["network create $N", SLEEPER], "network disconnect $N $N", ALL),
    s("network-disconnect-stopped", &["network create $N", EXITED, "network connect $N $N"], "network disconnect $N $N", ALL),
    s("network-disconnect-stopped-not-connected", &["network create $N", EXITED], "network disconnect $N $N", ALL),
    s("network-disconnect-missing-network", &[SLEEPER], "network disconnect nosuch$N $N", ALL),
    s("network-disconnect-missing-container", &["network create $N"], "network disconnect $N nosuch$N", ALL),
    s("network-disconnect-force-missing", &["network create $N"], "network disconnect -f $N nosuch$N", ALL),
    s("network-disconnect-host", &["run -d --name $N --network host $B sleep 300"], "network disconnect host $N", ALL),
    // volumes: vol-create/ls/inspect/rm/prune, -v NAME:/path, -v /path, --mount, Mounts
    s("volume-create", &[], "volume create $N", ALL),
    s("volume-create-again", &["volume create $N"], "volume create $N", ALL),
    s("volume-create-invalid", &[], "volume create ../$N", ALL),
    s("volume-ls", &["volume create $N"], "volume ls -f name=$N", ALL),
    s("volume-ls-quiet", &["volume create $N", "volume create $N-b"], "volume ls -q -f name=$N", ALL),
    s("volume-ls-label", &["volume create --label p=$N $N-a", "volume create $N-b"], "volume ls -q -f label=p=$N", ALL),
    s("volume-ls-dangling", &["volume create $N-free", "run --name $N -v $N-used:/data $B true"], "volume ls -q -f name=$N -f dangling=true", ALL),
    s("volume-ls-used", &["volume create $N-free", "run --name $N -v $N-used:/data $B true"], "volume ls -q -f name=$N -f dangling=false", ALL),
    s("volume-inspect-format", &["volume create --label a=b $N"], "volume inspect -f '{{.Name}} {{.Driver}} {{.Scope}} {{index .Labels \"a\"}}' $N", ALL),
    s("volume-inspect-missing", &[], "volume inspect nosuch$N", ALL),
    s("volume-rm", &["volume create $N"], "volume rm $N", ALL),
    s("volume-rm-missing", &[], "volume rm nosuch$N", ALL),
    s("volume-rm-force-missing", &[], "volume rm -f nosuch$N", ALL),
    s("volume-rm-in-use", &["run --name $N -v $N:/data $B true"], "volume rm $N", ALL),
    s("volume-rm-after-ctr-rm", &["run --name $N -v $N:/data $B true", "rm -v $N"], "volume rm $N", ALL),
    s("volume-prune-named-kept", &["volume create --label p=$N $N"], "volume prune -f --filter label=p=$N", OC),
    s("run-volume-named", &["run --name $N -v $N:/data $B sh -c 'echo kept > /data/f'"], "run --rm -v $N:/data $B cat /data/f", ALL),
    s("run-volume-named-ro", &["volume create $N"], "run --rm -v $N:/data:ro $B touch /data/f", ALL),
    s("run-volume-anonymous", &[], "run --rm -v /data $B sh -c 'touch /data/x && ls /data'", ALL),
    s("run-volume-mount", &[], "run --rm --mount type=volume,source=$N,target=/data $B sh -c 'touch /data/x && ls /data'", ALL),
    s("run-volume-image-owner", &["build -t $N - <<< FROM $B\nRUN mkdir /data && echo seeded > /data/seed && chown -R 1000 /data && chmod 750 /data\nUSER 1000\nVOLUME /data"], "run --rm $N sh -c 'cat /data/seed; stat -c %u:%a /data; touch /data/x && echo wrote'", ALL),
    s("run-volume-named-populated", &["build -t $N - <<< FROM $B\nRUN mkdir /data && echo seeded > /data/seed && chown -R 1000 /data"], "run --rm -v $N:/data $N sh -c 'cat /data/seed; stat -c %u /data'", ALL),
    s("run-volume-named-not-repopulated", &["build -t $N - <<< FROM $B\nRUN mkdir /data && echo seeded > /data/seed", "run --rm -v $N:/data $B sh -c 'echo mine > /data/own'"], "run --rm -v $N:/data $N ls /data", ALL),
    s("run-volume-invalid-name", &[], "run --rm -v ../x:/data $B true", CODE),
    s("run-volume-relative-target", &[], "run --rm -v $N:data $B true", CODE),
    s("inspect-mounts-volume", &["run --name $N -v $N:/data $B true"], "inspect -f '{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.Driver}} {{.Mode}} {{.RW}} {{.Propagation}}{{end}}' $N", ALL),
    s("inspect-mounts-volume-ro", &["run --name $N -v $N:/data:ro $B true"], "inspect -f '{{range .Mounts}}{{.Type}} {{.Mode}} {{.RW}}{{end}}' $N", ALL),
    s("inspect-mounts-anonymous", &["run --name $N -v /data $B true"], "inspect -f '{{range .Mounts}}{{.Type}} {{len .Name}} {{.Destination}} {{.Mode}} {{.RW}}{{end}}' $N", ALL),
    s("inspect-mount-flag", &["run --name $N --mount type=volume,source=$N,target=/data,readonly --mount type=volume,target=/anon $B true"], "inspect -f '{{len .HostConfig.Mounts}} {{(index .HostConfig.Mounts 0).Type}} {{(index .HostConfig.Mounts 0).Source}} {{(index .HostConfig.Mounts 0).Target}} {{(index .HostConfig.Mounts 0).ReadOnly}} {{json .HostConfig.Binds}} {{json .Config.Volumes}}' $N", ALL),
    s("inspect-binds-none", &["run --name $N $B true"], "inspect -f '{{json .HostConfig.Binds}}' $N", ALL),
    s("inspect-binds-volume", &["run --name $N -v $N:/data -v /anon $B true"], "inspect -f '{{json .HostConfig.Binds}} {{json .Config.Volumes}}' $N", ALL),
];

#[rustfmt::skip]
const INTENDED: &[Intended] = &[
    Intended {
        scenarios: &["pull-output", "pull-by-digest-output"],
        differs: OUT,
        reason: "img-pull's stdout is what a pipe carries: the reference pinned by digest (DESIGN); its progress, which docker pull prints on stdout, goes to stderr",
    },
    Intended {
        scenarios: &["container-prune-asks-no", "image-prune-asks-no"],
        differs: OUT | ERR,
        reason: "the prune question goes to stderr, which carries everything that is not a result (DESIGN); Docker writes it to stdout. Asked alike, answered alike: the -asked- rows check what each answer does",
    },
    Intended {
        scenarios: &["volume-prune-named-kept"],
        differs: OUT,
        reason: "vol-prune removes only anonymous volumes unless -a, as Docker does since 23.0; the 20.10 engine here prunes named ones too",
    },
    Intended {
        scenarios: &["run-env-order"],
        differs: OUT,
        reason: "the runtime spec lists the environment in Docker's order (PATH, HOSTNAME, the -e entries, HOME; Config.Env is checked by inspect-env), but libcontainer applies it through a hash map, so the order a process reads differs; the entries are the same (run-env-list)",
    },
    Intended {
        scenarios: &["tag"],
        differs: OUT,
        reason: "img-tag prints what it changed, the new reference fully qualified, so `img-tag A B | img-push -` works (DESIGN); docker tag prints nothing",
    },
    Intended {
        scenarios: &["exec-missing-command"],
        differs: CODE,
        reason: "ctr-exec exits 127 for a command not found, as ctr-run and docker run do and as Docker's exec does since 23.0; the 20.10 engine here reports every exec start failure as 126",
    },
    Intended {
        scenarios: &["run-ip-default-bridge"],
        differs: CODE,
        reason: "berth gives a container on the default bridge the address --ip asks for (its IPAM is its own, and the address is checked against the subnet); Docker refuses it there: \"user specified IP address is supported on user defined networks only\"",
    },
    Intended {
        scenarios: &["inspect-network-mode-default"],
        differs: OUT,
        reason: "HostConfig.NetworkMode says the mode berth uses, `bridge`; the 20.10 engine keeps the client's word `default` when --network is not given",
    },
    Intended {
        scenarios: &["build-fails"],
        differs: CODE,
        reason: "img-build exits 1 when a step fails, as BuildKit's docker build (the default since 23.0) does; 20.10's legacy builder passes the step's own exit code on",
    },
];

/// A scenario's outcome on both sides, or why it could not be compared.
struct Result {
    name: &'static str,
    docker: Outcome,
    berth: Outcome,
    setup_problem: Option<String>,
    took: std::time::Duration,
}

/// Docker's engine runs one prune at a time ("a prune operation is
/// already running"): scenarios that prune take turns.
static PRUNING: Mutex<()> = Mutex::new(());

fn run_one(
    index: usize,
    scenario: &Scenario,
    engine: &Dockerd,
    vars: &Vars,
    template: &std::path::Path,
) -> Result {
    let prunes =
        scenario.cmd.contains("prune") || scenario.setup.iter().any(|s| s.contains("prune"));
    let _turn = prunes.then(|| PRUNING.lock().unwrap_or_else(|e| e.into_inner()));
    let name = format!("px{index:03}");
    let fixture = Fixture::new();
    let root = fixture.root().to_path_buf();
    let root_text = root.display().to_string();
    let norm = |o: Outcome, root: &str| Outcome {
        code: o.code,
        stdout: normalise(&o.stdout, vars, root),
        stderr: normalise(&o.stderr, vars, root),
    };
    let started = std::time::Instant::now();
    let mut problem = None;
    // The images both sides start with: Docker's engine pulled them once;
    // each berth store is a copy of one that pulled them once.
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(template.join("."))
        .arg(&root)
        .status();
    if !copied.as_ref().is_ok_and(|s| s.success()) {
        problem = Some(format!("copying the template store failed: {copied:?}"));
    }
    for step in scenario.setup {
        let line = vars.expand(step, &name);
        let docker = run_docker(engine, &line);
        let berth = run_berth(&root, &line);
        if docker.code != berth.code && problem.is_none() {
            problem = Some(format!(
                "setup `{line}` ends differently: docker {docker:?}, berth {berth:?}"
            ));
        }
    }
    let line = vars.expand(scenario.cmd, &name);
    let docker = norm(run_docker(engine, &line), "");
    let berth = norm(run_berth(&root, &line), &root_text);
    Result {
        name: scenario.name,
        docker,
        berth,
        setup_problem: problem,
        took: started.elapsed(),
    }
}

fn parts(mask: u8) -> String {
    let names: Vec<&str> = [(OUT, "stdout"), (ERR, "stderr"), (CODE, "exit code")]
        .iter()
        .filter(|(bit, _)| mask & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    names.join(", ")
}

#[test]
fn berth_answers_as_docker_does() {
    let started = std::time::Instant::now();
    let registry = Registry::start();
    // Docker's default network on a bridge and subnet of the suite's own,
    // its user networks from a pool berth's stores never pick, and no
    // firewall rules (no scenario sends traffic off the host).
    let bridge = TestBridge::new(PARITY_BRIDGE, "10.197.3.1/24");
    let engine = bridge.and_then(|bridge| {
        let flags = [
            &format!("--bridge={PARITY_BRIDGE}") as &str,
            "--iptables=false",
            "--ip-masq=false",
            "--default-address-pool",
            "base=10.198.0.0/16,size=24",
        ];
        Dockerd::start_with(&registry.host, &flags).map(|engine| (bridge, engine))
    });
    let (_bridge, engine) = match engine {
        Ok(engine) => engine,
        Err(why) => {
            eprintln!(
                "\n{bar}\nPARITY SUITE SKIPPED: Docker's engine cannot start here: {why}\n{bar}\n",
                bar = "!".repeat(72)
            );
            return;
        }
    };
    let fixture = Fixture::new();
    let busybox = fixture.busybox("parity/busybox:latest", "parity");
    let other = fixture.busybox("parity/other:v1", "parity other");
    let third = fixture.busybox("parity/third:latest", "parity third");
    for (image, name) in [
        (&busybox, "parity/busybox:latest"),
        (&other, "parity/other:v1"),
        (&third, "parity/third:latest"),
    ] {
        fixture.push(image, &registry.host, name, Format::DockerV2s2);
    }
    let host = registry.host.clone();
    let (b, o) = (
        format!("{host}/parity/busybox:latest"),
        format!("{host}/parity/other:v1"),
    );
    for image in [&b, &o] {
        let out = engine.run(&["pull", "-q", image]);
        assert!(out.status.success(), "docker pull {image}: {out:?}");
    }
    let out = engine.run(&["image", "inspect", "-f", "{{index .RepoDigests 0}}", &b]);
    let pinned = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let digest = pinned.split_once('@').expect("a repo digest").1.to_string();
    let keep = [&busybox, &other, &third]
        .iter()
        .map(|i| {
            i.config_digest
                .to_string()
                .trim_start_matches("sha256:")
                .to_string()
        })
        .chain([digest.trim_start_matches("sha256:").to_string()])
        .collect();
    let vars = Vars {
        registry: host.clone(),
        busybox: b,
        other: o,
        digest,
        keep,
    };

    let template = Fixture::new();
    for image in [&vars.busybox, &vars.other] {
        let pulled = run_berth(template.root(), &format!("pull -q {image}"));
        assert_eq!(pulled.code, Some(0), "berth pull {image}: {pulled:?}");
    }
    let template_root = template.root().to_path_buf();

    // `BERTH_PARITY_ONLY=volume` runs only the scenarios whose name holds
    // it (while working on one feature); CI runs them all.
    let only = std::env::var("BERTH_PARITY_ONLY").unwrap_or_default();
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..6 {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    let Some(scenario) = SCENARIOS.get(index) else {
                        break;
                    };
                    if !scenario.name.contains(only.as_str()) {
                        continue;
                    }
                    let result = run_one(index, scenario, &engine, &vars, &template_root);
                    results.lock().unwrap().push(result);
                }
            });
        }
    });
    let results = results.into_inner().unwrap();

    let mut failures = Vec::new();
    let (mut identical, mut intended) = (0, 0);
    let mut names = std::collections::BTreeSet::new();
    for scenario in SCENARIOS {
        assert!(
            names.insert(scenario.name),
            "{} listed twice",
            scenario.name
        );
    }
    for entry in INTENDED {
        for name in entry.scenarios {
            assert!(
                names.contains(name),
                "INTENDED names unknown scenario {name}"
            );
        }
    }
    for result in &results {
        let scenario = SCENARIOS.iter().find(|s| s.name == result.name).unwrap();
        let expected = INTENDED
            .iter()
            .find(|i| i.scenarios.contains(&result.name))
            .map_or(0, |i| i.differs);
        let differs = differing(&result.docker, &result.berth, scenario.compare);
        let unexpected = differs & !expected;
        let stale = expected & !differs;
        if let Some(problem) = &result.setup_problem {
            failures.push(format!("{}: {problem}", result.name));
        } else if unexpected != 0 || stale != 0 {
            failures.push(format!(
                "{}: `{}`\n  differs in: {}{}\n  docker: {:#?}\n  berth:  {:#?}",
                result.name,
                scenario.cmd,
                parts(unexpected),
                if stale != 0 {
                    format!(" (intended difference in {} is gone)", parts(stale))
                } else {
                    String::new()
                },
                result.docker,
                result.berth
            ));
        } else if expected != 0 {
            intended += 1;
        } else {
            identical += 1;
        }
    }
    let mut slowest: Vec<(&str, std::time::Duration)> =
        results.iter().map(|r| (r.name, r.took)).collect();
    slowest.sort_by_key(|(_, took)| std::cmp::Reverse(*took));
    eprintln!("slowest scenarios: {:?}", &slowest[..5.min(slowest.len())]);
    eprintln!(
        "parity against dockerd {}: {} scenarios, {identical} identical, {intended} intended differences, {} failing, in {:.1?}",
        engine.version(),
        results.len(),
        failures.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} of {} scenarios differ from Docker:\n{}",
        failures.len(),
        results.len(),
        failures.join("\n")
    );
}
