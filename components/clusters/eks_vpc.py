"""``EksVpc``: the network an EKS cluster runs in (public and private subnets per zone, NAT)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.clusters.eks_spec import NatGateways
from components.clusters.network import subnet_layout
from components.clusters.tags import subnet_tags


def _nth(index: int) -> Callable[[Sequence[str]], str]:
    """A function picking one element, for ``Output.apply`` inside loops."""

    def pick(items: Sequence[str]) -> str:
        return items[index]

    return pick


@dataclass(frozen=True)
class EksVpcArgs:
    """Arguments of ``EksVpc``.

    Attributes:
        cluster_name: The cluster the subnets are tagged for.
        cidr: VPC CIDR.
        zone_count: Availability zones to use.
        nat_gateways: ``single`` or ``per-zone``.

    """

    cluster_name: str
    cidr: str
    zone_count: int
    nat_gateways: NatGateways = "single"


class EksVpc(pulumi.ComponentResource):
    """A VPC for EKS: public and private subnets across zones, an internet gateway, NAT.

    Attributes:
        vpc_id: The VPC.
        public_subnet_ids: Public subnets, in zone order.
        private_subnet_ids: Private subnets (nodes and pods), in zone order.

    """

    vpc_id: pulumi.Output[str]
    public_subnet_ids: pulumi.Output[list[str]]
    private_subnet_ids: pulumi.Output[list[str]]

    def __init__(self, name: str, args: EksVpcArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:clusters:EksVpc", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        layout = subnet_layout(args.cidr, args.zone_count)
        zones = aws.get_availability_zones_output(
            state="available",
            filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}],
            opts=pulumi.InvokeOutputOptions(parent=self),
        ).names

        vpc = aws.ec2.Vpc(
            name,
            cidr_block=args.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": name},
            opts=child,
        )
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags={"Name": name}, opts=child)

        def default_route_table(table_name: str, target: dict[str, pulumi.Input[str]]) -> aws.ec2.RouteTable:
            """Route table ``table_name`` whose one route sends all traffic (``0.0.0.0/0``) to ``target``."""
            return aws.ec2.RouteTable(
                table_name,
                vpc_id=vpc.id,
                routes=[{"cidr_block": "0.0.0.0/0", **target}],
                tags={"Name": table_name},
                opts=child,
            )

        public_rt = default_route_table(f"{name}-public", {"gateway_id": igw.id})

        def zone_subnet(
            tier: Literal["public", "private"], i: int, cidr: str, route_table: aws.ec2.RouteTable
        ) -> aws.ec2.Subnet:
            """Subnet ``<name>-<tier>-<i>`` in zone ``i``, associated with ``route_table``."""
            public = tier == "public"
            subnet = aws.ec2.Subnet(
                f"{name}-{tier}-{i}",
                vpc_id=vpc.id,
                cidr_block=cidr,
                availability_zone=zones.apply(_nth(i)),
                map_public_ip_on_launch=True if public else None,
                tags={"Name": f"{name}-{tier}-{i}", **subnet_tags(args.cluster_name, public=public)},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-{tier}-{i}", subnet_id=subnet.id, route_table_id=route_table.id, opts=child
            )
            return subnet

        public: list[aws.ec2.Subnet] = []
        private: list[aws.ec2.Subnet] = []
        nats: list[aws.ec2.NatGateway] = []
        for plan in layout:
            i = plan.zone_index
            subnet = zone_subnet("public", i, plan.public_cidr, public_rt)
            public.append(subnet)
            if args.nat_gateways == "per-zone" or i == 0:
                eip = aws.ec2.Eip(
                    f"{name}-nat-{i}", domain="vpc", tags={"Name": f"{name}-nat-{i}"}, opts=child
                )
                nats.append(
                    aws.ec2.NatGateway(
                        f"{name}-nat-{i}",
                        allocation_id=eip.allocation_id,
                        subnet_id=subnet.id,
                        tags={"Name": f"{name}-nat-{i}"},
                        opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                    )
                )

        for plan in layout:
            i = plan.zone_index
            nat = nats[i] if args.nat_gateways == "per-zone" else nats[0]
            route_table = default_route_table(f"{name}-private-{i}", {"nat_gateway_id": nat.id})
            private.append(zone_subnet("private", i, plan.private_cidr, route_table))

        self.vpc_id = vpc.id
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public])
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private])
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
            }
        )
