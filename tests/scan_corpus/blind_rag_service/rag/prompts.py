from jinja2 import Template

ANSWER_PROMPT = """Answer the question using only the context.

{% for c in chunks %}[{{ loop.index }}] {{ c.text }} ({{ c.source }})
{% endfor %}
Question: {{ question }}"""

answer_template = Template(ANSWER_PROMPT)


def render_answer(question: str, chunks: list) -> str:
    return answer_template.render(question=question, chunks=chunks)


def render_many(questions: list[str], chunks_by_question: dict[str, list]) -> list[str]:
    prompts = []
    for question in questions:
        template = Template(ANSWER_PROMPT)  # expect: SLP103
        prompts.append(template.render(question=question, chunks=chunks_by_question[question]))
    return prompts
