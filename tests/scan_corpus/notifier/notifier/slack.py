import httpx
from jira import JIRA

SLACK_URL = "https://slack.internal/api/chat.postMessage"
_client = httpx.AsyncClient(timeout=5)


async def post_message(channel: str, text: str) -> bool:
    resp = await _client.post(SLACK_URL, json={"channel": channel, "text": text})
    return resp.status_code == 200


def file_tickets(summaries: list[str]) -> list[str]:
    jira = JIRA("https://jira.internal", token_auth="token")
    keys = []
    for summary in summaries:
        issue = jira.create_issue(project="OPS", summary=summary, issuetype={"name": "Task"})
        keys.append(issue.key)
    return keys
