"""The Pulumi program: load config, build the stack for its target, export the outputs."""

from stacks.program import program

program()
