"""Every table, imported once so Alembic and the tests see the whole schema."""

from sqlmodel import SQLModel

from crm.campaigns.models import *  # noqa: F403
from crm.contacts.models import *  # noqa: F403
from crm.content.models import *  # noqa: F403
from crm.donations.models import *  # noqa: F403
from crm.emailtemplates.models import *  # noqa: F403
from crm.events.models import *  # noqa: F403
from crm.forms.models import *  # noqa: F403
from crm.jobs.models import *  # noqa: F403
from crm.journeys.models import *  # noqa: F403
from crm.outbox.models import *  # noqa: F403
from crm.segments.models import *  # noqa: F403
from crm.staff.models import *  # noqa: F403
from crm.volunteers.models import *  # noqa: F403
from crm.webhooks.models import *  # noqa: F403

metadata = SQLModel.metadata
