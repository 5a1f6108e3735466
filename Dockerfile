FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY crm ./crm
COPY worker ./worker
COPY migrations ./migrations
COPY templates ./templates
RUN pip install --no-cache-dir -e . && useradd --create-home crm && mkdir -p /app/var && chown crm /app/var
USER crm
EXPOSE 8000
CMD ["crm", "api", "--host", "0.0.0.0", "--port", "8000"]
