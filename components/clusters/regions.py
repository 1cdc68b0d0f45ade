"""Cloud regions the platform can be deployed to: the one list config validation checks against.

A region name a cloud does not know fails only at ``pulumi up``, after minutes, with a provider
error; config validation rejects it up front with the closest known name. The price table
(``components/gpu/prices.yaml``) holds prices for a few of these regions; a test keeps its region
names inside this catalog.

Sources (compiled 2026-11-29; clouds open regions a few times a year — a missing one is added here):

* AWS: the partitions ``aws``, ``aws-cn``, ``aws-us-gov`` and ``aws-eusc`` of botocore 1.44.8's
  ``data/endpoints.json`` (the region list the AWS SDKs resolve endpoints with), which matches the
  "AWS Regions" table of the AWS General Reference. The isolated partitions (``aws-iso*``) are left out.
* Azure: the physical regions of ``az account list-locations`` (``metadata.regionType ==
  'Physical'``), i.e. the ``name`` column Azure Resource Manager takes as ``location``, for the
  public, US Government and China clouds; transcribed from Microsoft's published list, not fetched
  by this repository's tooling.
"""

from __future__ import annotations

import difflib
from typing import Final

from components.gpu.catalog import Cloud

CATALOG_DATE: Final = "2026-11-29"
"""When the lists below were compiled."""

AWS_REGIONS: Final[frozenset[str]] = frozenset(
    {
        # aws
        "af-south-1",
        "ap-east-1",
        "ap-east-2",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-south-1",
        "ap-south-2",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "ap-southeast-5",
        "ap-southeast-6",
        "ap-southeast-7",
        "ca-central-1",
        "ca-west-1",
        "eu-central-1",
        "eu-central-2",
        "eu-north-1",
        "eu-south-1",
        "eu-south-2",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "il-central-1",
        "me-central-1",
        "me-south-1",
        "mx-central-1",
        "sa-east-1",
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        # aws-cn, aws-us-gov, aws-eusc
        "cn-north-1",
        "cn-northwest-1",
        "us-gov-east-1",
        "us-gov-west-1",
        "eusc-de-east-1",
    }
)
"""AWS region codes (``eks.region``)."""

AZURE_LOCATIONS: Final[frozenset[str]] = frozenset(
    {
        # Americas
        "brazilsouth",
        "brazilsoutheast",
        "canadacentral",
        "canadaeast",
        "centralus",
        "chilecentral",
        "eastus",
        "eastus2",
        "mexicocentral",
        "northcentralus",
        "southcentralus",
        "westcentralus",
        "westus",
        "westus2",
        "westus3",
        # Europe
        "austriaeast",
        "belgiumcentral",
        "francecentral",
        "francesouth",
        "germanynorth",
        "germanywestcentral",
        "italynorth",
        "northeurope",
        "norwayeast",
        "norwaywest",
        "polandcentral",
        "spaincentral",
        "swedencentral",
        "swedensouth",
        "switzerlandnorth",
        "switzerlandwest",
        "uksouth",
        "ukwest",
        "westeurope",
        # Asia Pacific
        "australiacentral",
        "australiacentral2",
        "australiaeast",
        "australiasoutheast",
        "centralindia",
        "eastasia",
        "indonesiacentral",
        "japaneast",
        "japanwest",
        "jioindiacentral",
        "jioindiawest",
        "koreacentral",
        "koreasouth",
        "malaysiawest",
        "newzealandnorth",
        "southeastasia",
        "southindia",
        "westindia",
        # Middle East and Africa
        "israelcentral",
        "qatarcentral",
        "southafricanorth",
        "southafricawest",
        "uaecentral",
        "uaenorth",
        # US Government and China clouds
        "usdodcentral",
        "usdodeast",
        "usgovarizona",
        "usgovtexas",
        "usgovvirginia",
        "chinaeast",
        "chinaeast2",
        "chinaeast3",
        "chinanorth",
        "chinanorth2",
        "chinanorth3",
    }
)
"""Azure location names as Resource Manager spells them (``aks.location``)."""

REGIONS: Final[dict[Cloud, frozenset[str]]] = {"aks": AZURE_LOCATIONS, "eks": AWS_REGIONS}
"""Known regions by cloud."""


def is_known_region(cloud: Cloud, name: str) -> bool:
    """Whether ``name`` is a region of ``cloud`` in this catalog (exact spelling)."""
    return name in REGIONS[cloud]


def closest_region(cloud: Cloud, name: str) -> str | None:
    """The known region of ``cloud`` most like ``name`` (``West Europe`` -> ``westeurope``), if any."""
    known = REGIONS[cloud]
    squashed = name.replace(" ", "").replace("_", "").lower()
    if squashed in known:
        return squashed
    close = difflib.get_close_matches(squashed if cloud == "aks" else name.lower(), known, n=1, cutoff=0.7)
    return close[0] if close else None
