"""The Kanban board: a pipeline's columns, a column's next page, and moving a deal by drag and drop."""

from django.urls import path

from . import views_board

urlpatterns = [
    path("board/", views_board.board, name="board"),
    path("pipelines/<int:pk>/board/", views_board.board, name="board-pipeline"),
    path("pipelines/<int:pk>/board/stages/<int:stage_pk>/", views_board.board_column, name="board-column"),
    path("deals/<int:pk>/board-move/", views_board.board_move, name="board-move"),
]
