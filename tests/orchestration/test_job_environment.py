"""The environment of a submitit task: its place in the job and the rendezvous port of its ranks."""

from orchestration.job_environment import TaskEnvironment, master_port, task_environment


def test_master_port_is_stable_per_job_and_outside_the_ephemeral_range():
    ports = [master_port(job_id) for job_id in ("1", "2", "11", "12_3", "987654")]
    assert ports == [master_port(job_id) for job_id in ("1", "2", "11", "12_3", "987654")]
    assert all(20_000 <= port < 32_768 for port in ports)
    assert len(set(ports)) == len(ports)


def test_a_lone_process_is_rank_0_of_1_without_a_job(monkeypatch):
    monkeypatch.delenv("SUBMITIT_EXECUTOR", raising=False)
    assert task_environment() == TaskEnvironment()
