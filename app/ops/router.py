"""Operator API /api/v1 (placeholder until the ops package lands)."""

from fastapi import APIRouter

router = APIRouter()
