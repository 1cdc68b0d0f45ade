"""Subnet CIDR math for the EKS VPC.

The AWS VPC CNI gives every pod a VPC address, so private subnets (nodes and pods) get most of
the VPC; public subnets only hold NAT gateways and load balancers and get small blocks carved from
the last private-sized block. The layout is a pure function of the VPC CIDR and the zone count so
it can be reviewed and tested without AWS.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

MIN_AWS_SUBNET_PREFIX = 28
"""AWS subnets are at most /16 and at least /28."""
PUBLIC_SPLIT_BITS = 4
"""Public subnets are 1/16 of a private one: room for NAT gateways and load balancers."""


@dataclass(frozen=True)
class SubnetPlan:
    """The two subnets of one availability zone.

    Attributes:
        zone_index: Position of the zone in the region's list of available zones.
        public_cidr: Public subnet (NAT gateway, internet-facing load balancers).
        private_cidr: Private subnet (nodes and pods).

    """

    zone_index: int
    public_cidr: str
    private_cidr: str


def subnet_layout(vpc_cidr: str, zone_count: int) -> list[SubnetPlan]:
    """Split a VPC into one public and one private subnet per availability zone.

    The VPC is cut into the smallest power-of-two number of equal blocks that leaves one block
    spare: zones take the first blocks as private subnets; public subnets are cut from the spare
    last block. A /16 over three zones gives private /18s and public /22s.

    Args:
        vpc_cidr: The VPC's IPv4 CIDR, e.g. ``10.0.0.0/16``.
        zone_count: Number of availability zones (1 to 7).

    Returns:
        One ``SubnetPlan`` per zone, in zone order; no two subnets overlap.

    Raises:
        ValueError: For a malformed CIDR, a zone count out of range, or a VPC too small to split.

    """
    if not 1 <= zone_count <= 7:
        raise ValueError(f"zone_count must be between 1 and 7, got {zone_count}")
    vpc = ipaddress.ip_network(vpc_cidr)
    if not isinstance(vpc, ipaddress.IPv4Network):
        raise ValueError(f"{vpc_cidr} is not an IPv4 network")
    block_bits = math.ceil(math.log2(zone_count + 1))
    private_prefix = vpc.prefixlen + block_bits
    public_prefix = private_prefix + PUBLIC_SPLIT_BITS
    if public_prefix > MIN_AWS_SUBNET_PREFIX:
        raise ValueError(
            f"{vpc_cidr} is too small for {zone_count} zones (public subnets would be /{public_prefix}); "
            "use a larger VPC"
        )
    blocks = list(vpc.subnets(new_prefix=private_prefix))
    publics = list(blocks[-1].subnets(new_prefix=public_prefix))
    return [
        SubnetPlan(zone_index=i, public_cidr=str(publics[i]), private_cidr=str(blocks[i]))
        for i in range(zone_count)
    ]
