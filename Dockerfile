FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends gettext && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY crm_okr crm_okr
COPY accounts accounts
COPY contacts contacts
COPY pipeline pipeline
COPY kpis kpis
COPY okrs okrs
RUN pip install --no-cache-dir .
COPY . .
RUN SECRET_KEY=build-only DEBUG=false python manage.py collectstatic --no-input \
 && SECRET_KEY=build-only DEBUG=false python manage.py compilemessages --ignore=.venv
RUN useradd --create-home crm && chown -R crm /app
USER crm
EXPOSE 8000
CMD ["gunicorn", "crm_okr.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
