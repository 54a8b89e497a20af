import shutil, sqlite3
from contextlib import closing
from pathlib import Path
from oews_api.sample import SAMPLE_DB
OUT = Path("/tmp/drill-reports"); OUT.mkdir(exist_ok=True)

def keep(state, tag):
    for d in (state / "drills").iterdir():
        shutil.copytree(d, OUT / f"{tag}-{d.name}", dirs_exist_ok=True)

def test_plain(standin, run_cli, oewsctl_state):
    for args in (["rollout"], ["pod-kill"], ["node-drain", "machine2"]):
        r = run_cli("--config", standin.config, "drill", *args, "--url", standin.url, "--settle", "3s")
        (OUT / f"{args[0]}.out").write_text(f"{r.returncode}\n{r.stdout}\n{r.stderr}")
        standin.wait_settled()
    r = run_cli("--config", standin.config, "drill", "report")
    (OUT / "report.out").write_text(r.stdout)
    keep(oewsctl_state, "plain")

def test_ssh(standin_nodes, run_cli, oewsctl_state, tmp_path):
    other = tmp_path / "oews-next.db"; shutil.copyfile(SAMPLE_DB, other)
    with closing(sqlite3.connect(other)) as db:
        db.execute("PRAGMA user_version = 7"); db.commit()
    for args in (["db-swap", str(other)], ["node-loss", "machine2", "--down", "10s"]):
        r = run_cli("--config", standin_nodes.config, "drill", *args, "--url", standin_nodes.url, "--settle", "3s")
        (OUT / f"{args[0]}.out").write_text(f"{r.returncode}\n{r.stdout}\n{r.stderr}")
        standin_nodes.wait_settled()
    keep(oewsctl_state, "ssh")
